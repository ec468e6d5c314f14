"""shenhe for Apache Spark and Arrow: rescans of archives too large for one machine.

    from shenhe_spark import scan_dataframe
    out = scan_dataframe(df, "content", "rules/", id_col="post_id", time_col="created_at",
                         poster_cols={"user_id": "uid", "ip": "ip", "port": "port"})
    out.write.parquet("decisions/")

    from shenhe_spark import scan_arrow        # without Spark: a pyarrow string column
    decisions = scan_arrow(pa.array(["出售冰毒", None, "今天天气不错"]))

It is part of the `shenhe` wheel (`pip install ./python[spark]`), which executors import
from their own Python environment. See the README, "Rescanning at scale".
"""
from .arrow import DECISION_COLUMNS, DECISION_SCHEMA, Engine, RuleSource, ShenheError, scan_arrow
from .spark import decision_schema, flagged, post_json_column, rescan, scan_dataframe

__all__ = [
    "DECISION_COLUMNS",
    "DECISION_SCHEMA",
    "Engine",
    "RuleSource",
    "ShenheError",
    "decision_schema",
    "flagged",
    "post_json_column",
    "rescan",
    "scan_arrow",
    "scan_dataframe",
]
