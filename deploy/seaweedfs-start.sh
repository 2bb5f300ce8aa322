#!/bin/sh
# Start SeaweedFS (master, volume, filer and S3 gateway in one process) with Spectra's two identities:
#   platform           - the web process and the platform worker: everything, in every bucket;
#   evaluation-worker  - reads objects under <bucket>/datasets/ by name and nothing else (no listing,
#                        no artifacts, no writes).
# The keys come from the environment, so they never appear on a command line. Extra arguments go to `weed server`.
# Used by docker-compose.yml and by the tests (tests/platform/test_object_store.py), so both run one policy.
set -eu
: "${SPECTRA_S3_BUCKET:?set SPECTRA_S3_BUCKET}"
: "${SPECTRA_S3_ACCESS_KEY_ID:?set SPECTRA_S3_ACCESS_KEY_ID}"
: "${SPECTRA_S3_SECRET_ACCESS_KEY:?set SPECTRA_S3_SECRET_ACCESS_KEY}"
: "${SPECTRA_S3_READ_ACCESS_KEY_ID:?set SPECTRA_S3_READ_ACCESS_KEY_ID}"
: "${SPECTRA_S3_READ_SECRET_ACCESS_KEY:?set SPECTRA_S3_READ_SECRET_ACCESS_KEY}"
config="${SPECTRA_S3_CONFIG:-$(mktemp /tmp/spectra-s3.XXXXXX)}"  # one per server: two on a machine never share
umask 077
cat > "$config" <<JSON
{"identities": [
  {"name": "platform",
   "credentials": [{"accessKey": "$SPECTRA_S3_ACCESS_KEY_ID", "secretKey": "$SPECTRA_S3_SECRET_ACCESS_KEY"}],
   "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
  {"name": "evaluation-worker",
   "credentials": [{"accessKey": "$SPECTRA_S3_READ_ACCESS_KEY_ID", "secretKey": "$SPECTRA_S3_READ_SECRET_ACCESS_KEY"}],
   "actions": ["Read:$SPECTRA_S3_BUCKET/datasets/*"]}
]}
JSON
# Lance and Iceberg gateways off: Spectra speaks plain S3 only. -iam=false: the identities above are the policy.
# -volume.max=0: as many volumes as the disk holds (the fixed default of 8 fills up once a few buckets and
# collections have taken their share).
exec weed server -s3 -s3.config="$config" -s3.port.lance=0 -s3.port.iceberg=0 -iam=false -volume.max=0 "$@"
