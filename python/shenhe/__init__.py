"""shenhe (审核): content moderation for Chinese-language communities.

    import shenhe
    engine = shenhe.Engine(shenhe.RuleSet.bundled())      # or RuleSet.from_path("rules/")
    d = engine.scan({"id": "p1", "text": "出售冰毒", "poster": {"user_id": "u1"}})
    d["action"], d["report"]                                # ('delete', True)
    engine.scan_batch(posts, threads=0)                     # every core, input order

Decisions are dicts in the JSON shape `shenhe scan` writes. Scans run with the GIL
released: Python threads scan on as many cores as there are. For posts that are really
published, `Pipeline(engine, audit=..., reports=...)` adds escalation, the audit record and
reports to the authorities, as `shenhe scan --audit --reports` does.
"""
from ._shenhe import (
    Engine,
    InputError,
    Pipeline,
    RecordError,
    RuleSet,
    RulesError,
    ShenheError,
    __version__,
)

__all__ = [
    "Engine",
    "InputError",
    "Pipeline",
    "RecordError",
    "RuleSet",
    "RulesError",
    "ShenheError",
    "__version__",
]
