#!/usr/bin/env bash
# Offline validation of deploy/k8s needs kubeconform and two schema sources:
# Kubernetes' OpenAPI document (in the k8s.io/kubernetes module) and Dapr's CRDs (in the
# github.com/dapr/dapr module that scripts/build_dapr.sh already downloads). All three
# come from the Go module proxy, pinned, and are cached; a second run does nothing.
set -euo pipefail

KUBECONFORM_VERSION="v0.8.0"
KUBERNETES_VERSION="v1.32.4"
DAPR_VERSION="v1.18.2"
bin_dir="${PUSHPOP_TOOLS_DIR:-${HOME}/.cache/pushpop/tools}/bin"
modcache="$(go env GOMODCACHE)"

log() { printf 'k8s_tools: %s\n' "$*" >&2; }

if [[ ! -x "${bin_dir}/kubeconform" ]]; then
    log "go install kubeconform ${KUBECONFORM_VERSION}"
    GOBIN="${bin_dir}" go install "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}"
fi
# `go mod download` outside a module needs no go.mod; the checksum database may be out of
# reach here (only the proxy is), and these modules are read for JSON schemas, never built.
if [[ ! -f "${modcache}/k8s.io/kubernetes@${KUBERNETES_VERSION}/api/openapi-spec/swagger.json" ]]; then
    log "go mod download k8s.io/kubernetes@${KUBERNETES_VERSION} (for its swagger.json)"
    (cd /tmp && GOSUMDB=off GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@${KUBERNETES_VERSION}")
fi
if [[ ! -d "${modcache}/github.com/dapr/dapr@${DAPR_VERSION}/charts/dapr/crds" ]]; then
    log "go mod download github.com/dapr/dapr@${DAPR_VERSION} (for its CRDs)"
    (cd /tmp && GOSUMDB=off GOFLAGS=-mod=mod go mod download "github.com/dapr/dapr@${DAPR_VERSION}")
fi
echo "${bin_dir}/kubeconform"
