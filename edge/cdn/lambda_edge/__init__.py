"""The Lambda@Edge contract: events, results and their validation, the rule tables, association checks,
and the trigger runner (the one module here that calls the invocation core)."""
