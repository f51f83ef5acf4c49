#!/usr/bin/env bash
# Installs the test bed's registries:
#   docker-registry  Debian's distribution 2.8 (no referrers API)
#   ocitestbed       our Go helper: registry with the referrers API, and the
#                    Docker token server used by both registries for bearer auth
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

install_docker_registry() {
  if [ ! -x /usr/bin/docker-registry ]; then
    log "docker-registry: installing Debian's package"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy docker-registry 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -qq
    fi
    # The package's postinst starts a daemon on :5000 through invoke-rc.d;
    # a policy-rc.d answering 101 forbids that. Only remove it if we made it.
    local made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    local rc=0
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends docker-registry >/dev/null || rc=$?
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" = 0 ] || { log "docker-registry: apt-get install failed ($rc)"; exit "$rc"; }
    # Keep it from starting at boot where an init system runs; tests start
    # their own instances with their own config.
    if [ -d /run/systemd/system ]; then
      systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    fi
    update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
  # In case a daemon got started anyway (e.g. an earlier install without the policy).
  if [ -x /etc/init.d/docker-registry ] && /etc/init.d/docker-registry status >/dev/null 2>&1; then
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  fi
  link_bin docker-registry /usr/bin/docker-registry
  log "docker-registry $(dpkg-query -W -f='${Version}' docker-registry): installed"
}

install_ocitestbed() {
  local moddir="$TESTBED_SRC/go/ocitestbed"
  # Version by content so that any edit of the module (or a Go update) rebuilds.
  local version
  version=$(
    cd "$moddir" || exit 1
    { go version; find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
        sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-12
  )
  go_build ocitestbed "$version" "$moddir" .
}

install_docker_registry
install_ocitestbed
