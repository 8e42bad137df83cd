"""FHIR R4 protocol layer: client, SMART auth, paging, Bulk Data export, typed errors.

Adapters build a `ClientConfig` and credentials from a connection and use `FhirClient` (and
`BulkExporter`); nothing here reads settings or the environment.
"""

from holovitals_sync.fhir.bulk import BulkExporter, BulkJob, ExportProgress
from holovitals_sync.fhir.bulk_manifest import Manifest, OutputFile
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.config import ClientConfig, Timeouts
from holovitals_sync.fhir.credentials import ClientSecret, PrivateKeyJwt, StaticToken
from holovitals_sync.fhir.errors import (
    AuthenticationError,
    AuthorizationError,
    FhirError,
    ForeignOriginError,
    MalformedResponse,
    OperationOutcomeError,
    PreconditionFailed,
    RateLimited,
    ResourceNotFound,
    ServerError,
    TransportError,
    TruncatedFile,
)
from holovitals_sync.fhir.keygen import GeneratedKey, generate_signing_key
from holovitals_sync.fhir.keys import KeyPair, generate_key_pair, key_pair_from_pem
from holovitals_sync.fhir.retry import RetryPolicy
from holovitals_sync.fhir.writes import WriteResult

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BulkExporter",
    "BulkJob",
    "ClientConfig",
    "ClientSecret",
    "ExportProgress",
    "FhirClient",
    "FhirError",
    "ForeignOriginError",
    "GeneratedKey",
    "KeyPair",
    "MalformedResponse",
    "Manifest",
    "OperationOutcomeError",
    "OutputFile",
    "PreconditionFailed",
    "PrivateKeyJwt",
    "RateLimited",
    "ResourceNotFound",
    "RetryPolicy",
    "ServerError",
    "StaticToken",
    "Timeouts",
    "TransportError",
    "TruncatedFile",
    "WriteResult",
    "generate_key_pair",
    "generate_signing_key",
    "key_pair_from_pem",
]
