"""tongban's PKI: national root, per-node intermediates, TLS / signing / issuer keys.

``init_pki`` writes a PKI directory (``tongban pki init DIR``), the ``load_*``
functions read a node's or client's credentials back, and ``verify_chain`` checks
leaf ← intermediate ← root at an explicit time, without I/O.
"""

from __future__ import annotations

from certs.pki import (
    CLIENT_NAME,
    HUB_CODE,
    NODE_CODES,
    PKI_SCHEMA_VERSION,
    PROVINCE_CODES,
    ClientCredentials,
    NodeCredentials,
    NodeLeafKind,
    PkiPaths,
    certificate_pem,
    init_pki,
    issue_leaf,
    load_certificate_pem,
    load_certificates_pem,
    load_client_credentials,
    load_node_credentials,
    load_pki_manifest,
    make_foreign_pki,
    node_code_of,
    verify_chain,
)

__all__ = [
    "CLIENT_NAME",
    "HUB_CODE",
    "NODE_CODES",
    "PKI_SCHEMA_VERSION",
    "PROVINCE_CODES",
    "ClientCredentials",
    "NodeCredentials",
    "NodeLeafKind",
    "PkiPaths",
    "certificate_pem",
    "init_pki",
    "issue_leaf",
    "load_certificate_pem",
    "load_certificates_pem",
    "load_client_credentials",
    "load_node_credentials",
    "load_pki_manifest",
    "make_foreign_pki",
    "node_code_of",
    "verify_chain",
]
