"""What every service needs and no service owns: the Redis connection and the table of job
functions the workers run.

The lowest layer of `services/` (the import contract in pyproject.toml keeps it so): it
imports no other service, so any service can use it without importing another's package.
"""
