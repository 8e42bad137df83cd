"""What every service needs and no service owns: the Redis connection and the table of job
functions the workers run.

The lowest of the service packages (pyproject.toml's import contract keeps the other eight
from being imported here); it imports only the configuration and libraries, so any service
can use it without importing another's package.
"""
