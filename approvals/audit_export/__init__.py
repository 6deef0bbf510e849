"""The signed audit export: bundles (bundle.py), the signing key (signing.py), the per-request
PDF report (report.py) and the auditor's page (views.py). The bundle's format and the chain's
hash are in approvals/audit_chain.py, shared with the offline verifier
(approvals/verify_bundle.py)."""
