"""The numbers a provider and every LLM run share, without the stored row (schema.provider, SQLModel):
the CLI's parsers read their defaults from here at start-up without importing SQLAlchemy."""

# Calls in flight at once: a provider's limit, and every LLM run's concurrency (tools.llm.settings), which is
# lowered to the provider's limit; one range and one default for both.
DEFAULT_CONCURRENCY = 8
CONCURRENCY_RANGE = (1, 512)
# The prompt of one call may be at most the provider's context length, in estimated tokens
# (tools.llm.limits); a provider without one set gets the default, a size today's hosted models take.
DEFAULT_CONTEXT_TOKENS = 128_000
CONTEXT_TOKENS_RANGE = (512, 10_000_000)
