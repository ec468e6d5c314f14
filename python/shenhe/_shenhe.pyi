"""Type stubs of the native module (python/src/*.rs)."""
import os
from types import TracebackType
from typing import Any, Dict, Iterable, List, Literal, Optional, Type, TypedDict, Union

__version__: str

class ShenheError(Exception):
    """Base class of every error shenhe raises."""

class RulesError(ShenheError):
    """Rules that do not load; the message names file:line:column and the rule."""
    kind: str
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
    rule: Optional[str]

class InputError(ShenheError):
    """A post that cannot be decided; the message names the post and the field."""

class RecordError(ShenheError):
    """A decision whose audit record or report could not be kept: hold the post."""

Action = Literal["allow", "mask", "review", "block", "delete"]
Severity = Literal["low", "medium", "high", "critical"]
PathLike = Union[str, "os.PathLike[str]"]

class Hit(TypedDict):
    rule: str
    category: int
    severity: Severity
    field: Literal["text", "title", "name", "bio"]
    start: int
    end: int
    char_start: int
    char_end: int
    matched: str
    term: str
    steps: List[str]

class MaskedField(TypedDict):
    field: str
    masked: str

class RulesetInfo(TypedDict):
    name: str
    version: str
    hash: str

class _DecisionRequired(TypedDict):
    action: Action
    report: bool
    categories: List[int]
    hits: List[Hit]
    ruleset: RulesetInfo

class Decision(_DecisionRequired, total=False):
    """A decision, as `shenhe scan` writes it; the optional keys appear when they apply."""
    id: Union[str, int]
    severity: Severity
    masked: str
    masked_fields: List[MaskedField]
    measures: List[Literal["warn", "restrict", "suspend"]]
    truncated: bool
    warnings: List[str]

class Poster(TypedDict, total=False):
    user_id: str
    name: str
    bio: str
    verified: bool
    identity_ref: str
    ip: str
    port: int
    registered: str

class _PostRequired(TypedDict):
    text: str

class PostDict(_PostRequired, total=False):
    """A post, as `shenhe scan` reads it (other keys are ignored)."""
    id: Union[str, int]
    title: str
    board: str
    time: str
    poster: Poster

Post = Union[PostDict, Dict[str, Any], str]

class Explanation(TypedDict):
    text: str
    marked: str
    folded: List[Dict[str, Any]]
    rules: Dict[str, Dict[str, Optional[str]]]
    decision: Decision

class RuleSet:
    @staticmethod
    def from_path(path: PathLike) -> "RuleSet": ...
    @staticmethod
    def bundled() -> "RuleSet": ...
    @staticmethod
    def from_toml(source: Union[str, bytes], base: Optional[PathLike] = None) -> "RuleSet": ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def __len__(self) -> int: ...

class Engine:
    def __init__(
        self,
        ruleset: Optional[RuleSet] = None,
        *,
        max_hits: Optional[int] = None,
        max_post_bytes: Optional[int] = None,
    ) -> None: ...
    def scan(self, post: Post) -> Decision: ...
    def scan_batch(self, posts: Iterable[Post], threads: int = 0) -> List[Decision]: ...
    def explain(self, text: str) -> Explanation: ...
    def reload(self, ruleset: RuleSet) -> None: ...
    def warm_up(self) -> None: ...
    @property
    def ruleset(self) -> RulesetInfo: ...
    def _decide_column(
        self,
        data: bytes,
        offsets: bytes,
        offset_width: int,
        validity: Optional[bytes],
        validity_bit: int,
        count: int,
        posts_json: bool,
        threads: int,
    ) -> bytes: ...

class Pipeline:
    def __init__(
        self,
        engine: Engine,
        *,
        audit: Optional[PathLike] = None,
        audit_key_file: Optional[PathLike] = None,
        reports: Optional[PathLike] = None,
        escalation: bool = True,
        report_deadline_hours: int = 24,
        utc_offset_hours: Optional[int] = None,
    ) -> None: ...
    def moderate(self, post: Post) -> Decision: ...
    def moderate_batch(self, posts: Iterable[Post]) -> List[Decision]: ...
    @property
    def engine(self) -> Engine: ...
    def close(self) -> Dict[str, Optional[int]]: ...
    def __enter__(self) -> "Pipeline": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
