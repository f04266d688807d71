#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are missing. As root it runs apt-get; otherwise
# it stops and prints the exact command to run.
set -euo pipefail
missing=()
for pkg in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]]; then
  echo "poem: installing missing Debian packages: ${missing[*]}"
  # Another apt or dpkg (unattended upgrades, a second make) may hold the lock: wait for it (up to 10
  # minutes, saying so) rather than fail.
  apt_opts=(-o DPkg::Lock::Timeout=600)
  if command -v fuser >/dev/null && fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; then
    echo "poem: another apt/dpkg holds the lock; waiting for it (up to 10 minutes)"
  fi
  apt-get "${apt_opts[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "poem: missing Debian packages. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
