# kms-dev-toml.sh — sourced by integration tests that run a real dstack-kms
# in dev auth mode on the simulated TDX. Defines:
#
#   kms_dev_toml ADDR PORT ONBOARD_PORT PCCS_URL ROOT_CA GATEWAY_APP_ID DOMAIN
#
# which prints a kms.toml: RPC on ADDR:PORT with the KMS's own certificates
# in ./certs (client certificates optional, checked against its temp CA),
# collateral from PCCS_URL, ROOT_CA as the (simulated) TDX trust anchor,
# image verification off, `dev` auth answering GATEWAY_APP_ID, and a
# headless bootstrap for DOMAIN on the onboarding port.
kms_dev_toml() {
	cat <<TOML
[rpc]
address = "$1"
port = $2
[rpc.tls]
key = "certs/rpc.key"
certs = "certs/rpc.crt"
[rpc.tls.mutual]
ca_certs = "certs/tmp-ca.crt"
mandatory = false
[core]
cert_dir = "certs"
[core.attestation]
insecure_allow_external_trust_anchors = true
[core.attestation.urls]
pccs = "$4"
[core.attestation.root_ca]
tdx = "$5"
[core.image]
verify = false
[core.auth_api]
type = "dev"
[core.auth_api.dev]
gateway_app_id = "$6"
[core.onboard]
address = "127.0.0.1"
port = $3
auto_bootstrap_domain = "$7"
TOML
}
