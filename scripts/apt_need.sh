# apt_need.sh - sourced by the scripts that install Debian packages they
# need (emu_avx512.sh, build_bochs3.sh). `as_root CMD...` runs a command as
# root (through sudo unless already root); `apt_need PKG...` installs those
# of the packages that are missing and does nothing when all are there. The
# caller defines log() for its messages.
as_root() {
    if ((EUID == 0)); then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else log "need root or sudo for: $*"; return 1
    fi
}

apt_need() {
    local missing=() p
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing: ${missing[*]}"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
