"""The full-text leg's own analysis: words as `\\w+` finds them, English stems without
PostgreSQL's stop-word list, identifiers kept whole, and each chunk's length in tokens.

PostgreSQL's `english` configuration keeps file names, URLs, e-mail addresses, versions and
hyphenated compounds as single lexemes (`file.txt`, `1.2.3`, `content-transfer-encod`) that a
question spelling the words apart never matches, splits `curl_easy_setopt` into three words,
and drops 127 stop words (among them "not", "up", "off", "before", "after", "no"). Measured
against rank_bm25's BM25Okapi on the development sets (bench/RESULTS.md, "Issue 12, third
round"), that analysis cost the leg 0.02-0.07 nDCG@10. Now:

- `lorebase_words(text)`: every run of non-word characters becomes a space, so the parser sees
  plain words and numbers (`file.txt` -> `file`, `txt`).
- `lorebase_identifiers(text)`: the words holding an underscore, with `_` written as U+02CD
  (a letter to the parser), so `curl_easy_setopt` is also one lexeme.
- `lorebase_english`: `english` with a Snowball stemmer that drops no word (a query's stop words
  are dropped by the query code; an index cannot hold a stop list of ours without a file in
  the server's share directory).
- `lorebase_tsconfig(regconfig)`: the configuration that indexes a project's language:
  `lorebase_english` for `english` (the stored value and default stay `english`), the
  configuration itself otherwise (`simple` for code).
- `lorebase_tsvector(regconfig, text)`: what `knowledge_items.tsv` holds; `tsv_length` is its
  number of tokens (BM25's document length).

Existing rows are re-analysed: the column is dropped and added again (a table rewrite), and
its GIN index rebuilt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FUNCTIONS = r"""
CREATE TEXT SEARCH DICTIONARY lorebase_english_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION lorebase_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION lorebase_english
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH lorebase_english_stem;

CREATE FUNCTION lorebase_tsconfig(config regconfig) RETURNS regconfig
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN config = 'english'::regconfig THEN 'lorebase_english'::regconfig
            ELSE config END;

CREATE FUNCTION lorebase_words(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(body, '\W+', ' ', 'g');

CREATE FUNCTION lorebase_identifiers(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(string_agg(replace(m[1], '_', U&'\02CD'), ' '), '')
    FROM regexp_matches(body, '(\w*[^\W_]_\w*)', 'g') AS m;
END;

CREATE FUNCTION lorebase_tsvector(config regconfig, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_tsvector(lorebase_tsconfig(config), lorebase_words(body))
    || to_tsvector(lorebase_tsconfig(config), lorebase_identifiers(body));

CREATE FUNCTION lorebase_token_count(vector tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer
    FROM unnest(vector);
END;
"""


def upgrade() -> None:
    op.execute(_FUNCTIONS)
    # Dropped and added rather than `SET EXPRESSION` (PostgreSQL 17+): README promises 15+.
    op.execute("""
        ALTER TABLE knowledge_items
            DROP COLUMN tsv,
            ADD COLUMN tsv tsvector
                GENERATED ALWAYS AS (lorebase_tsvector(ts_config, chunk_text)) STORED,
            ADD COLUMN tsv_length integer
                GENERATED ALWAYS AS (lorebase_token_count(lorebase_tsvector(ts_config, chunk_text)))
                STORED;
        CREATE INDEX ix_knowledge_items_tsv ON knowledge_items USING gin (tsv);
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE knowledge_items
            DROP COLUMN tsv_length,
            DROP COLUMN tsv,
            ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector(ts_config, chunk_text)) STORED;
        CREATE INDEX ix_knowledge_items_tsv ON knowledge_items USING gin (tsv);
    """)
    op.execute("""
        DROP FUNCTION IF EXISTS lorebase_token_count(tsvector);
        DROP FUNCTION IF EXISTS lorebase_tsvector(regconfig, text);
        DROP FUNCTION IF EXISTS lorebase_identifiers(text);
        DROP FUNCTION IF EXISTS lorebase_words(text);
        DROP FUNCTION IF EXISTS lorebase_tsconfig(regconfig);
        DROP TEXT SEARCH CONFIGURATION IF EXISTS lorebase_english;
        DROP TEXT SEARCH DICTIONARY IF EXISTS lorebase_english_stem;
    """)
