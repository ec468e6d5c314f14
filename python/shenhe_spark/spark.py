"""shenhe inside Apache Spark: `scan_dataframe` adds decision columns to a DataFrame with one
call into shenhe per Arrow batch (`mapInArrow`), and `rescan` runs a whole archive through it.

Each Spark task decides its batches on its own thread (shenhe is told to use one thread), so
Spark's slots are the only parallelism and cores are not oversubscribed. Rules travel to
executors as a broadcast of their bytes; the code does not travel at all: executors import
the `shenhe` wheel (which holds this package too) from their own Python environment, as
they import pyarrow. Escalation is off: it depends on the live order of posts, which a
rescan does not have.
"""
from . import arrow

POST_JSON_COLUMN = "__shenhe_post"
_POSTER_FIELDS = ("user_id", "name", "bio", "verified", "identity_ref", "ip", "port", "registered")
# How timestamps reach shenhe: RFC 3339 with the offset of the session's time zone.
RFC3339 = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"


def decision_schema():
    """The decision columns as a Spark schema (StructType)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow.DECISION_SCHEMA)


def post_json_column(df, text_col, id_col=None, title_col=None, board_col=None, time_col=None, poster_col=None,
                     poster_cols=None):
    """A Spark column holding each row's post as JSON, in the shape `shenhe scan` reads,
    built on the JVM (`to_json`). Null fields are left out, so a row whose text is null
    gets an error, never `allow`. `poster_col` names a struct column shaped like `poster`; `poster_cols` maps poster
    fields (user_id, name, bio, verified, identity_ref, ip, port, registered) to columns."""
    from pyspark.sql import functions as F

    fields = [F.col(text_col).cast("string").alias("text")]
    if id_col:
        fields.append(F.col(id_col).alias("id"))
    for name, col in (("title", title_col), ("board", board_col)):
        if col:
            fields.append(F.col(col).cast("string").alias(name))
    if time_col:
        fields.append(_time(df, time_col).alias("time"))
    if poster_col and poster_cols:
        raise ValueError("give poster_col or poster_cols, not both")
    if poster_col:
        fields.append(F.col(poster_col).alias("poster"))
    if poster_cols:
        unknown = set(poster_cols) - set(_POSTER_FIELDS)
        if unknown:
            raise ValueError(f"poster_cols: unknown poster fields {sorted(unknown)}; known: {_POSTER_FIELDS}")
        parts = []
        for field, col in poster_cols.items():
            c = _time(df, col) if field == "registered" else F.col(col)
            parts.append(c.alias(field))
        fields.append(F.struct(*parts).alias("poster"))
    # Timestamps nested in the poster struct are written as RFC 3339 too.
    return F.to_json(F.struct(*fields), {"timestampFormat": RFC3339})


def _time(df, col):
    """An RFC 3339 string for a timestamp column (strings pass as they are)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    kind = df.schema[col].dataType
    if isinstance(kind, (TimestampType, DateType)):
        return F.date_format(F.col(col), RFC3339)
    if isinstance(kind, TimestampNTZType):
        raise ValueError(f"{col}: a timestamp without time zone is ambiguous; convert it to a timestamp first")
    return F.col(col).cast("string")


def scan_dataframe(df, text_col=None, rules=None, *, post_json_col=None, id_col=None, title_col=None,
                   board_col=None, time_col=None, poster_col=None, poster_cols=None):
    """`df` with the decision columns added: action, report, categories, severity, hits
    (array of structs with byte and char offsets, rule, term, steps), masked, masked_fields,
    truncated, warnings, ruleset (the rule set's hash) and error (why a row could not be
    decided; the other decision columns are then null). Lazy, like any transformation.

    The post is `text_col` plus the mapped columns (`id_col`, `title_col`, `board_col`,
    `time_col`, `poster_col` or `poster_cols`), so conditions and policy apply as in
    `shenhe scan`; or `post_json_col`, a column holding each post's JSON line as is (the
    line of a JSONL archive read with `spark.read.text`), which gives exactly what
    `shenhe scan` gives for that line, errors included. `rules`: None for the bundled rules,
    the bytes of a rule file, or a path to a rule file or directory (read on the driver).
    Executors need the `shenhe` wheel installed in their Python (see the README)."""
    from pyspark.sql.types import StructType

    if (text_col is None) == (post_json_col is None):
        raise ValueError("give text_col or post_json_col (exactly one)")
    clash = [c for c in arrow.DECISION_COLUMNS if c in df.columns]
    if clash:
        raise ValueError(f"the DataFrame already has columns named {clash}: rename them first")
    source = arrow.RuleSource.of(rules)
    arrow.Engine.cached(source)  # fail here, on the driver, when the rules do not load
    sc = df.sparkSession.sparkContext
    rules_bc = sc.broadcast((source.kind, source.files))
    if post_json_col is not None:
        posts, input_col, json_mode, drop = df, post_json_col, True, False
    elif any((id_col, title_col, board_col, time_col, poster_col, poster_cols)):
        column = post_json_column(df, text_col, id_col, title_col, board_col, time_col, poster_col, poster_cols)
        posts, input_col, json_mode, drop = df.withColumn(POST_JSON_COLUMN, column), POST_JSON_COLUMN, True, True
    else:
        posts, input_col, json_mode, drop = df, text_col, False, False
    keep = [f for f in posts.schema.fields if not (drop and f.name == POST_JSON_COLUMN)]
    schema = StructType(keep + decision_schema().fields)
    kept = [f.name for f in keep]

    def decide_partition(batches):
        import pyarrow as pa

        from shenhe_spark import arrow as on_executor

        kind, files = rules_bc.value
        engine = on_executor.Engine.cached(on_executor.RuleSource(kind, files))
        for batch in batches:
            decisions = engine.decide(batch.column(input_col), posts_json=json_mode, threads=1)
            columns = [batch.column(name) for name in kept] + decisions.columns
            yield pa.RecordBatch.from_arrays(columns, names=kept + decisions.schema.names)

    return posts.mapInArrow(decide_partition, schema)


def flagged(df):
    """The rows whose decision is not `allow`, or that must be reported, or that could not
    be decided: what the follow-up step turns into reports and audit records."""
    from pyspark.sql import functions as F

    return df.where((F.col("action") != "allow") | F.col("report") | F.col("error").isNotNull())


def rescan(spark, input_path, output_path, rules=None, *, input_format=None, flagged_path=None,
           mode="errorifexists", **columns):
    """Rescans an archive: `input_path` is Parquet (a file or directory) or JSON Lines posts
    (`.jsonl`, `.json`, or `input_format="jsonl"`). JSONL lines are decided as `shenhe scan`
    decides them (the line is kept in a `post` column); Parquet columns are mapped with
    `text_col` (default "text") and the other keyword arguments of `scan_dataframe`
    (default: the columns named id, title, board, time, poster when present). Writes the
    decision table as Parquet to `output_path`, and with `flagged_path` the flagged posts as
    JSON Lines there (for `shenhe scan --reports DIR --audit DB --no-escalation`). Returns
    the counts {posts, flagged, errors}."""
    from pyspark.sql import functions as F

    fmt = input_format or ("jsonl" if str(input_path).endswith((".jsonl", ".json", ".jsonl.gz")) else "parquet")
    if fmt == "jsonl":
        df = spark.read.text(str(input_path)).withColumnRenamed("value", "post")
        out = scan_dataframe(df, rules=rules, post_json_col="post")
    elif fmt == "parquet":
        df = spark.read.parquet(str(input_path))
        text_col = columns.pop("text_col", "text")
        for name in ("id", "title", "board", "time", "poster"):
            if f"{name}_col" not in columns and "poster_cols" not in columns and name in df.columns:
                columns[f"{name}_col"] = name
        out = scan_dataframe(df, text_col, rules=rules, **columns)
    else:
        raise ValueError(f"input_format: expected jsonl or parquet, got {fmt}")
    out.write.mode(mode).parquet(str(output_path))
    # Counts and the flagged export come from the written table, not from a second scan.
    written = spark.read.parquet(str(output_path))
    counts = written.agg(
        F.count(F.lit(1)).alias("posts"),
        F.sum(((F.col("action") != "allow") | F.col("report")).cast("long")).alias("flagged"),
        F.sum(F.col("error").isNotNull().cast("long")).alias("errors"),
    ).collect()[0]
    if flagged_path:
        rows = flagged(written).where(F.col("error").isNull())
        post = F.col("post").alias("value") if fmt == "jsonl" else _post_json_of(rows, columns, text_col)
        rows.select(post).write.mode(mode).text(str(flagged_path))
    return {k: int(counts[k] or 0) for k in ("posts", "flagged", "errors")}


def _post_json_of(df, columns, text_col):
    mapping = {k: v for k, v in columns.items() if k.endswith("_col") or k == "poster_cols"}
    return post_json_column(df, text_col, **mapping).alias("value")

