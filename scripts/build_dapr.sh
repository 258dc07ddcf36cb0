#!/usr/bin/env bash
# Build Dapr's daprd, placement and scheduler (github.com/dapr/dapr v1.18.2)
# from source with the local Go toolchain, for pushpop's "real Dapr" mode.
#
# Why from source: there is no Docker engine and no dapr CLI download here,
# only the Go module proxy. `go install github.com/dapr/dapr/cmd/daprd@v1.18.2`
# is refused because dapr's go.mod carries replace directives, so we build
# through the wrapper module in tools/dapr-build (it requires dapr v1.18.2,
# repeats its replace directives and carries its go.sum).
#
# Patches: tools/dapr-build/overlay/*.go.overlay replace files of a scratch copy of the
# dapr module the build uses (go build refuses -overlay inside the module cache):
# placement's and scheduler's health servers bind
# where --healthz-listen-address says (1.18.2 parses the flag and binds every
# interface; dapr/dapr#10394 upstream). bin/.overlay-sha records which patches the
# installed binaries carry; a change to them rebuilds.
#
# Idempotent: skips the build when all three binaries for the version exist.
# Output:   ${PUSHPOP_DAPR_DIR:-$HOME/.cache/pushpop/dapr/1.18.2}/bin/
# Duration: ~4-6 min on 2 cores from cold caches (~0.5 GB of modules).
#
# Environment:
#   PUSHPOP_DAPR_DIR   install directory (default above; bin/ is created in it)
#   PUSHPOP_DAPR_FORCE set to 1 to rebuild even if the binaries exist
#   CGO_ENABLED        defaults to 0 (static binaries, no C compiler needed),
#                      as in Dapr's own release builds
set -euo pipefail

DAPR_VERSION="1.18.2"
DAPR_MODULE="github.com/dapr/dapr"
BINARIES=(daprd placement scheduler)

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
wrapper_dir="${repo_root}/tools/dapr-build"
install_dir="${PUSHPOP_DAPR_DIR:-${HOME}/.cache/pushpop/dapr/${DAPR_VERSION}}"
bin_dir="${install_dir}/bin"

log() { printf 'build_dapr: %s\n' "$*" >&2; }
die() { printf 'build_dapr: error: %s\n' "$*" >&2; exit 1; }

overlay_dir="${wrapper_dir}/overlay"
# what supervise/dapr_build.py computes too: sha256 of the overlay files in name order
overlay_sha="$(cd "${overlay_dir}" && LC_ALL=C ls -- *.go.overlay | LC_ALL=C sort \
    | xargs cat | sha256sum | cut -c1-16)"

all_built() {
    local b
    for b in "${BINARIES[@]}"; do
        [[ -x "${bin_dir}/${b}" ]] || return 1
    done
    [[ "$(cat "${bin_dir}/.overlay-sha" 2>/dev/null)" == "${overlay_sha}" ]]
}

if [[ "${PUSHPOP_DAPR_FORCE:-0}" != "1" ]] && all_built; then
    log "dapr ${DAPR_VERSION} already built, nothing to do"
    echo "${bin_dir}"
    exit 0
fi

command -v go >/dev/null 2>&1 \
    || die "'go' not found in PATH; install Go >= 1.26 (https://go.dev/dl/) and retry"
[[ -f "${wrapper_dir}/go.mod" && -f "${wrapper_dir}/go.sum" ]] \
    || die "wrapper module missing: ${wrapper_dir}/go.mod and go.sum"

mkdir -p "${install_dir}"

# Serialise concurrent runs (e.g. parallel test workers) on one install dir.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${install_dir}/.build.lock"
    flock 9
    if [[ "${PUSHPOP_DAPR_FORCE:-0}" != "1" ]] && all_built; then
        log "dapr ${DAPR_VERSION} was built by a concurrent run"
        echo "${bin_dir}"
        exit 0
    fi
fi

start=${SECONDS}
log "building ${DAPR_MODULE} v${DAPR_VERSION} (daprd, placement, scheduler) with $(go version)"
log "this takes ~4-6 minutes on a cold cache"

# Build in a scratch copy of the wrapper module: -mod=mod may add indirect
# requirements to go.mod/go.sum and must not dirty the repository.
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/pushpop-dapr-build.XXXXXX")"
trap 'rm -rf "${work_dir}"' EXIT
cp "${wrapper_dir}/go.mod" "${wrapper_dir}/go.sum" "${work_dir}/"
find "${wrapper_dir}" -maxdepth 1 -name '*.go' -exec cp {} "${work_dir}/" \;
mkdir -p "${work_dir}/out"

# -mod=mod: resolve from go.mod/go.sum without a vendor dir and without
# `go mod tidy` (tidy walks every build tag and fails on checksum look-ups).
# The Go build and module caches are left at their defaults so reruns are fast.
export GOFLAGS="-mod=mod"
export CGO_ENABLED="${CGO_ENABLED:-0}"

# A patched copy of the dapr module (46 MB), which the scratch go.mod builds instead.
(
    cd "${work_dir}"
    go mod download "${DAPR_MODULE}"
    dapr_dir="$(go list -m -f '{{.Dir}}' "${DAPR_MODULE}")"
    [[ -d "${dapr_dir}" ]] || die "cannot locate ${DAPR_MODULE} in the module cache"
    cp -R "${dapr_dir}" "${work_dir}/dapr"
    chmod -R u+w "${work_dir}/dapr"
    cp "${overlay_dir}/healthz_server.go.overlay" "${work_dir}/dapr/pkg/healthz/server/server.go"
    cp "${overlay_dir}/placement_app.go.overlay" "${work_dir}/dapr/cmd/placement/app/app.go"
    cp "${overlay_dir}/scheduler_app.go.overlay" "${work_dir}/dapr/cmd/scheduler/app/app.go"
    go mod edit -replace "${DAPR_MODULE}=./dapr"
) || die "preparing the patched dapr module failed"

(
    cd "${work_dir}"
    # stablecomponents: without a components tag daprd panics at start-up;
    # this tag compiles in state.postgresql, state.sqlite, state.in-memory and
    # secretstores.local.env (plus every other stable component).
    go build \
        -tags stablecomponents \
        -ldflags "-X ${DAPR_MODULE}/pkg/buildinfo.version=${DAPR_VERSION}" \
        -o "${work_dir}/out/" \
        "${DAPR_MODULE}/cmd/daprd" \
        "${DAPR_MODULE}/cmd/placement" \
        "${DAPR_MODULE}/cmd/scheduler"
) || die "go build failed"

for b in "${BINARIES[@]}"; do
    [[ -x "${work_dir}/out/${b}" ]] || die "go build produced no ${b}"
done

version_out="$("${work_dir}/out/daprd" --version 2>&1 || true)"
[[ "${version_out}" == *"${DAPR_VERSION}"* ]] \
    || die "daprd --version printed '${version_out}', expected ${DAPR_VERSION}"

# Install: move each binary into place (rename within one filesystem is atomic).
mkdir -p "${bin_dir}"
for b in "${BINARIES[@]}"; do
    cp "${work_dir}/out/${b}" "${bin_dir}/.${b}.new"
    mv -f "${bin_dir}/.${b}.new" "${bin_dir}/${b}"
done
echo "${overlay_sha}" >"${bin_dir}/.overlay-sha"

elapsed=$((SECONDS - start))
log "built dapr ${DAPR_VERSION} in $((elapsed / 60)) min $((elapsed % 60)) s"
echo "${bin_dir}"
