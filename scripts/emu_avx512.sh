#!/usr/bin/env bash
# emu_avx512.sh - run a statically linked x86-64 Linux program under the Bochs
# emulator with an AVX-512 capable CPU model, so AVX-512F code can be tested on
# hosts without AVX-512 (e.g. AMD Zen 3).
#
# How: boot Debian's stock kernel from an isolinux ISO inside Bochs with a tiny
# initramfs (busybox + the program) whose /init runs the program, prints a
# marker with its exit status on the serial console and powers off. The
# serial log is streamed back with the boot noise filtered out, and the
# program's exit status becomes ours.
#
# Bochs interprets every instruction (~50 MIPS here): expect ~15-20 s of boot
# and a program ~100x slower than native. See --help.
set -euo pipefail

prog=${0##*/}
usage() {
    cat <<EOF
usage: $prog [options] BINARY [ARGS...]

Run a statically linked x86-64 BINARY with ARGS under Bochs (AVX-512 CPU).
Exits with the program's exit status, 124 on timeout, 125 if the emulator
never reported one (the tail of the console log is printed then).

options:
  --cpu MODEL      Bochs CPU model: tigerlake (default), corei7_skylake_x, or
                   sapphire_rapids (AVX512-BF16/FP16 and AMX too; runs on a
                   Bochs 3.0 built once by scripts/build_bochs3.sh, since
                   Debian 12's Bochs 2.7 lacks the model; patched with
                   scripts/bochs3-attn.patch so that Linux enables AMX)
  --timeout SEC    wall-clock limit for boot + run (default 1800)
  --mem MB         guest memory (default 512, at least 192)
  --smp N          emulated CPUs (default 1; sapphire_rapids: 1 only, its
                   Bochs 3.0 is built for one); Bochs runs them all on one host
                   thread, so N CPUs share the speed of one
  --file PATH      copy PATH (file or directory) into the guest at the same
                   absolute path; repeatable. The program runs in the caller's
                   \$PWD (created in the guest), so relative paths keep working.
  --ips N          instructions per emulated second (default 50000000, about
                   Bochs' real speed, so guest clocks roughly follow wall time);
                   only scales the guest clock, not the real speed
  --append ARGS    extra kernel command-line arguments
  --verbose        show the whole boot log, not only the program's output
  --keep           keep the work directory (ISO, bochsrc, logs); print its path
  -h, --help       this help

BINARY may also be a #!/bin/sh script (busybox sh runs it), e.g. one that
runs several --file'd programs. The program's stdin is /dev/null; stdout and
stderr both go to the emulated serial port (~80 KB/s); carriage returns are
dropped. Guest memory is RAM only: files written inside are lost.
EOF
}

die() { echo "$prog: error: $*" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }

# ---------------------------------------------------------------- options
cpu=tigerlake timeout=1800 mem=512 smp=1 ips=50000000 verbose=0 keep=0
append="" files=()
while (($#)); do
    case $1 in
        --cpu) cpu=${2:?--cpu needs a value}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        --mem) mem=${2:?--mem needs a value}; shift 2 ;;
        --smp) smp=${2:?--smp needs a value}; shift 2 ;;
        --ips) ips=${2:?--ips needs a value}; shift 2 ;;
        --file) files+=("${2:?--file needs a value}"); shift 2 ;;
        --append) append=${2?--append needs a value}; shift 2 ;;
        --verbose) verbose=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *) break ;;
    esac
done
(($#)) || { usage >&2; exit 2; }
binary=$1; shift
case $cpu in tigerlake|corei7_skylake_x|sapphire_rapids) ;;
    *) die "--cpu must be tigerlake, corei7_skylake_x or sapphire_rapids" ;; esac
for v in timeout mem smp ips; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v needs a positive integer"
done
((mem >= 192)) || die "--mem must be at least 192 (the kernel alone occupies 16-80 MB)"
[[ $cpu != sapphire_rapids ]] || ((smp == 1)) || die "--cpu sapphire_rapids runs one CPU (--smp 1)"
[[ -f $binary && -r $binary ]] || die "not a readable file: $binary"
binary=$(realpath -- "$binary")
cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/attn-emu

# ---------------------------------------------------------------- 1. tools
# Idempotent: apt-get only runs when a package is missing. bochs-term
# satisfies bochs' "bochs-gui" dependency without pulling in wxWidgets;
# binutils and xz-utils are for preparing the kernel (see below).
. "$(dirname "$0")/apt_need.sh"
apt_need bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso \
    busybox-static cpio xz-utils binutils
# Sapphire Rapids: Bochs 3.0 from Debian's source (built once, cached);
# its BIOS images are still those of the packages above.
bochs=bochs
[[ $cpu == sapphire_rapids ]] && { bochs=$("$(dirname "$0")/build_bochs3.sh") || die "could not build Bochs 3.0"; }
[[ $'\n'$("$bochs" -help cpu 2>&1)$'\n' == *$'\n'"$cpu"$'\n'* ]] || die "this bochs has no CPU model '$cpu'"
# Only static binaries work: the initramfs has no dynamic loader or libc.
[[ $(readelf -lW "$binary" 2>/dev/null) != *"program interpreter"* ]] ||
    die "$binary is dynamically linked; build it with -static"

# ---------------------------------------------------------------- work dir
work=$(mktemp -d "${TMPDIR:-/tmp}/emu_avx512.XXXXXX")
bochs_pid="" tail_pid=""
# shellcheck disable=SC2317  # (called from the EXIT trap)
cleanup() {
    [[ -n $bochs_pid ]] && kill -KILL "$bochs_pid" 2>/dev/null
    [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null
    if ((keep)); then log "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- kernel
# Write a 32-bit little-endian integer into a file at a byte offset.
put_le32() {
    printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($2 & 255)) $(($2 >> 8 & 255)) \
        $(($2 >> 16 & 255)) $(($2 >> 24 & 255)))" |
        dd of="$1" bs=1 seek="$3" conv=notrunc status=none
}

# Debian's vmlinuz is xz-compressed, and its own decompressor needs ~4e9
# emulated instructions (~75 s in Bochs). So, once, on the host: unpack the
# kernel ELF, lay its segments out as a flat memory image, and rebuild a
# bzImage = the original real-mode setup + a small 32-bit stub + that image.
# The stub moves the image to its load address, zeroes bss, enters long mode
# with an identity map and jumps to the kernel's 64-bit entry, i.e. what the
# decompressor does (no KASLR, so no relocation). Prints nothing on success.
build_flat_kernel() {  # SRC DST TMPDIR
    local src=$1 dst=$2 t=$3 off entry base=-1 end=0 memend=0 bss img setup pm
    off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ(?=\x00)' "$src") || return 1
    off=${off%%:*}
    tail -c +$((off + 1)) "$src" >"$t/payload.xz"
    xz -dc --single-stream "$t/payload.xz" >"$t/vmlinux" 2>/dev/null || return 1
    entry=$(readelf -hW "$t/vmlinux" | awk '/Entry point/ {print $NF}')
    # program headers: Offset PhysAddr FileSiz MemSiz of each LOAD segment
    local -a segs
    mapfile -t segs < <(readelf -lW "$t/vmlinux" | awk '$1 == "LOAD" {print $2, $4, $5, $6}')
    ((${#segs[@]})) || return 1
    local s o pa fs ms
    for s in "${segs[@]}"; do
        read -r o pa fs ms <<<"$s"
        ((base < 0 || pa < base)) && base=$((pa))
        ((pa + fs > end)) && end=$((pa + fs))
        ((pa + ms > memend)) && memend=$((pa + ms))
    done
    ((entry == base)) || return 1
    memend=$(((memend + 4095) & ~4095))
    truncate -s $((end - base)) "$t/flat"
    for s in "${segs[@]}"; do
        read -r o pa fs ms <<<"$s"
        dd if="$t/vmlinux" of="$t/flat" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes \
            skip=$((o)) seek=$((pa - base)) count=$((fs)) conv=notrunc status=none
    done
    # Everything from .bss on is zero: drop it from the image, the stub clears it.
    img=$((end - base))
    bss=$(readelf -SW "$t/vmlinux" | sed -E 's/^ *\[ *[0-9]+\] +//' | awk '$1 == ".bss" {print "0x" $3}')
    if [[ -n $bss ]]; then
        bss=$((bss - 0xffffffff80000000 - base))   # virtual -> offset in image
        if ((bss > 0 && bss < img)) && cmp -s -n $((img - bss)) -i "$bss:0" "$t/flat" /dev/zero; then
            img=$bss
        fi
    fi
    img=$(((img + 4095) & ~4095))
    truncate -s "$img" "$t/flat"
    cat >"$t/stub.S" <<'EOF'
        .code32                         /* at 0x100000; %esi = boot_params */
        .globl _start
_start: mov     %esi, %ebx
        /* The image overlaps its target (higher up): move it in chunks no
         * larger than the distance, last chunk first, each one forwards
         * (Bochs runs forward "rep movs" much faster than backward). */
        cld
        mov     $IMG_SIZE, %edx                 /* bytes still to move */
3:      mov     $(LOAD_ADDR - payload), %ecx
        cmp     %ecx, %edx
        cmovb   %edx, %ecx
        sub     %ecx, %edx
        lea     payload(%edx), %esi
        lea     LOAD_ADDR(%edx), %edi
        shr     $2, %ecx
        rep movsl
        test    %edx, %edx
        jnz     3b
        mov     $(LOAD_ADDR + IMG_SIZE), %edi   /* zero bss etc. */
        mov     $((MEM_SIZE - IMG_SIZE) / 4), %ecx
        xor     %eax, %eax
        rep stosl
        movl    $(pgt + 0x1003), pgt            /* PML4[0] -> PDPT */
        mov     $(pgt + 0x1000), %edi           /* PDPT[0..3] -> 4 page directories */
        mov     $(pgt + 0x2003), %eax
        mov     $4, %ecx
1:      mov     %eax, (%edi)
        add     $0x1000, %eax
        add     $8, %edi
        loop    1b
        mov     $(pgt + 0x2000), %edi           /* 2048 x 2 MiB pages: 0..4 GiB identity */
        mov     $0x83, %eax
        mov     $2048, %ecx
2:      mov     %eax, (%edi)
        add     $0x200000, %eax
        add     $8, %edi
        loop    2b
        lgdt    gdt_desc
        mov     %cr4, %eax                      /* PAE */
        or      $0x20, %eax
        mov     %eax, %cr4
        mov     $pgt, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx               /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax                      /* PG + PE */
        or      $0x80000001, %eax
        mov     %eax, %cr0
        ljmp    $0x10, $long_mode
        .code64
long_mode:
        mov     $0x18, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        mov     %ebx, %esi                      /* %rsi = boot_params */
        mov     $LOAD_ADDR, %eax
        jmp     *%rax
        .balign 16                              /* __BOOT_CS = 0x10, __BOOT_DS = 0x18 */
gdt:    .quad   0, 0, 0x00af9a000000ffff, 0x00cf92000000ffff
gdt_desc:
        .word   gdt_desc - gdt - 1
        .long   gdt
        .balign 4096
pgt:    .fill   6 * 4096, 1, 0
payload:
EOF
    as --64 -o "$t/stub.o" "$t/stub.S" --defsym IMG_SIZE="$img" \
        --defsym MEM_SIZE=$((memend - base)) --defsym LOAD_ADDR="$base" || return 1
    ld -m elf_x86_64 -Ttext=0x100000 -e _start --oformat binary -o "$t/stub.bin" "$t/stub.o" || return 1
    setup=$(( ($(od -An -tu1 -j $((0x1f1)) -N1 "$src") + 1) * 512 ))
    head -c "$setup" "$src" >"$t/bz"
    cat "$t/stub.bin" "$t/flat" >>"$t/bz"
    pm=$(($(stat -c %s "$t/bz") - setup))
    put_le32 "$t/bz" $(((pm + 15) / 16)) $((0x1f4))             # syssize
    put_le32 "$t/bz" $((memend - 0x100000)) $((0x260))          # init_size
    printf '\0' | dd of="$t/bz" bs=1 seek=$((0x234)) conv=notrunc status=none    # not relocatable
    printf '\0\0' | dd of="$t/bz" bs=1 seek=$((0x236)) conv=notrunc status=none  # no 64-bit/EFI entry
    (($(stat -c %s "$t/bz") == setup + $(stat -c %s "$t/stub.bin") + img)) || return 1
    mv "$t/bz" "$dst"
}

# Debian's kernel comes as a .deb; only vmlinuz is unpacked into the cache
# (nothing is installed into /boot), and the flat variant is built next to it.
# Both are reused across runs; a lock guards concurrent first runs.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -s $cache/vmlinuz ]]; then
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}') || true
    if [[ -z $kpkg ]]; then
        as_root apt-get update -qq
        kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [[ -n $kpkg ]] || die "cannot resolve the linux-image-amd64 package"
    log "downloading $kpkg (kernel only, into $cache)"
    mkdir "$work/dl"
    (cd "$work/dl" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >&2)
    dpkg-deb --fsys-tarfile "$work/dl"/*.deb | tar -x -C "$work/dl" --wildcards './boot/vmlinuz-*'
    mv "$work/dl"/boot/vmlinuz-* "$cache/vmlinuz.tmp"
    mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
    echo "$kpkg" >"$cache/vmlinuz.version"
    rm -rf "$work/dl" "$cache/vmlinuz-flat" "$cache/vmlinuz-flat.failed"
fi
if [[ ! -s $cache/vmlinuz-flat && ! -e $cache/vmlinuz-flat.failed ]]; then
    log "preparing an uncompressed kernel image (once)"
    mkdir "$work/kbuild"
    if build_flat_kernel "$cache/vmlinuz" "$cache/vmlinuz-flat" "$work/kbuild"; then :; else
        log "warning: could not prepare it; using the compressed kernel (boot ~75 s slower)"
        : >"$cache/vmlinuz-flat.failed"
    fi
    rm -rf "$work/kbuild"
fi
flock -u 9
kernel=$cache/vmlinuz
[[ -s $cache/vmlinuz-flat ]] && kernel=$cache/vmlinuz-flat

# ---------------------------------------------------------------- 2. initramfs
# Single-quote a string for /bin/sh (POSIX-safe: ' becomes '\'').
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
    [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
done

# Copy a host path into the guest tree at the same absolute path.
place() {
    local src
    src=$(realpath -- "$1") || die "no such path: $1"
    [[ -e $src ]] || die "no such path: $1"
    case $src in
        /|/bin|/bin/*|/sbin|/sbin/*|/proc*|/sys*|/dev*|/init) die "cannot place $src in the guest (reserved path)" ;;
    esac
    mkdir -p "$root$(dirname -- "$src")"
    cp -RL -- "$src" "$root$src"
}
place "$binary"
for f in "${files[@]}"; do place "$f"; done
mkdir -p "$root$PWD"

start_marker="=== EMU_PROGRAM_START ==="
cmd=$(shq "$binary")
for a in "$@"; do cmd+=" $(shq "$a")"; done
quiet_printk='echo 1 >/proc/sys/kernel/printk   # keep kernel chatter out of the output'
((verbose)) && quiet_printk=""
cat >"$root/init" <<EOF
#!/bin/sh
# Generated by $prog: run one program, report its status, power off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
$quiet_printk
cd $(shq "$PWD")
echo '$start_marker'
$cmd
rc=\$?
# "stty" sets the tty with TCSADRAIN, i.e. waits until the serial port has sent
# everything; otherwise poweroff can cut off the output's tail.
stty -F /dev/console onlcr
echo "EMU_EXIT_STATUS=\$rc"
stty -F /dev/console onlcr
poweroff -f
EOF
chmod 755 "$root/init"
# Left uncompressed: gunzip inside the emulator costs more than loading the
# extra bytes from the ISO (~1 s per MB vs ~0.1 s per MB).
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) >"$work/initrd.cpio"

# ---------------------------------------------------------------- 3. ISO + bochsrc
iso=$work/iso
mkdir -p "$iso/isolinux" "$iso/boot"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$kernel" "$iso/boot/vmlinuz"
mv "$work/initrd.cpio" "$iso/boot/initrd.cpio"
# Kernel arguments:
# - clearcpuid works around Bochs 2.7 bugs that otherwise lose AVX or hang:
#   PKRU is in XCR0 but CPUID leaf 0xD/9 is empty, and the XSAVES/XSAVEC
#   (compacted) area size is wrong (either makes the kernel disable XSAVE,
#   i.e. no AVX/AVX-512); with FSRM the kernel's memmove (rep movsb) ends in a
#   double-fault loop during boot. User space still sees these CPUID bits.
# - the rest skips work that is slow when emulated: mitigations, KASLR,
#   delay-loop calibration (lpj), crypto self-tests, the W+X page-table scan
#   done when making rodata read-only.
# Bochs 3.0 (sapphire_rapids) keeps XSAVES and XSAVEC: it sizes the
# compacted area right, and Linux enables AMX only with XSAVES (and XFD).
clear=pku,ospke,xsaves,xsavec,fsrm
[[ $bochs == bochs ]] || clear=pku,ospke,fsrm
cmdline="console=ttyS0,115200 clearcpuid=$clear mitigations=off nokaslr"
cmdline+=" lpj=1000000 cryptomgr.notests rodata=off panic=0"
# Bochs' TSC counts one tick per instruction, while the kernel would take the
# model's nominal 2.4/3.5 GHz: tell it the real rate, so guest clocks and
# timers run at "ips" instructions per second, like Bochs' other timers.
cmdline+=" tsc_early_khz=$((ips / 1000))"
((verbose)) || cmdline+=" quiet"
cmdline+=" $append"
cat >"$iso/isolinux/isolinux.cfg" <<EOF
DEFAULT emu
PROMPT 0
TIMEOUT 0
LABEL emu
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.cpio
  APPEND $cmdline
EOF
xorriso -as mkisofs -quiet -o "$work/emu.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2>/dev/null
rm -rf "$iso" "$root"

# Debian's bochs has no "nogui" display and is built with the internal
# debugger, which stops at a prompt before the first instruction. So: the
# curses "term" display (TERM=dumb, output to a file), -q to skip the start
# menu, and a debugger script (-rc) that says "continue". Sound is stubbed
# out (probing ALSA crashes bochs here), panics are fatal instead of
# prompting, a triple fault stops the emulator instead of rebooting forever,
# and the unused second IDE channel is off (its BIOS probe costs 3 s).
# The Bochs 3.0 of build_bochs3.sh has "nogui", no debugger and no sound.
serial=$work/serial.log
: >"$serial"
printf 'continue\nquit\n' >"$work/debugger.rc"
if [[ $bochs == bochs ]]; then
    display=term rc=(-rc "$work/debugger.rc")
    sound=$'sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy\nspeaker: enabled=0'
else
    display=nogui rc=() sound=""
fi
cat >"$work/bochsrc" <<EOF
display_library: $display
megs: $mem
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=$cpu, count=$smp, ips=$ips, reset_on_triple_fault=0
clock: sync=none, time0=local
ata0-master: type=cdrom, path=$work/emu.iso, status=inserted
ata1: enabled=0
boot: cdrom
com1: enabled=1, mode=file, dev=$serial
$sound
log: $work/bochs.log
panic: action=fatal
error: action=$( ((verbose)) && echo report || echo ignore )
info: action=$( ((verbose)) && echo report || echo ignore )
debug: action=ignore
EOF

# ---------------------------------------------------------------- 4. run
log "booting bochs (cpu=$cpu, smp=$smp, mem=${mem}M, timeout=${timeout}s)"
t0=$EPOCHREALTIME
TERM=dumb "$bochs" -q -f "$work/bochsrc" "${rc[@]}" </dev/null >"$work/bochs.out" 2>&1 &
bochs_pid=$!

# Stream the console: with --verbose everything, otherwise only the lines
# between the start marker and the status marker.
tail -n +1 -F -s 0.2 --pid="$bochs_pid" "$serial" 2>/dev/null |
    awk -v start="$start_marker" -v all="$verbose" '
        { gsub(/\r/, "") }
        !on { if ($0 == start) on = 1; else if (all) print; fflush(); next }
        /EMU_EXIT_STATUS=[0-9]+$/ { sub(/EMU_EXIT_STATUS=[0-9]+$/, ""); if ($0 != "") print; fflush(); exit }
        { print; fflush() }' &
tail_pid=$!

elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
boot_time="" result=""
deadline=$((${EPOCHREALTIME%.*} + timeout))
while kill -0 "$bochs_pid" 2>/dev/null; do
    if [[ -z $boot_time ]] && grep -qaF "$start_marker" "$serial"; then
        boot_time=$(elapsed)
    fi
    end=$(tail -c 4096 "$serial" | tr -d '\r')
    if [[ -n $boot_time ]] && grep -qaE 'EMU_EXIT_STATUS=[0-9]+$' <<<"$end"; then
        result=finished; break
    fi
    if [[ $end == *"Kernel panic - not syncing"* ]]; then
        result="kernel panic"; sleep 2; break
    fi
    if ((${EPOCHREALTIME%.*} >= deadline)); then result=timeout; break; fi
    sleep 0.25
done
run_end=$(elapsed)
# bochs may have powered off between two polls
[[ -z $boot_time ]] && grep -qaF "$start_marker" "$serial" && boot_time=$run_end

# After the marker the guest powers off via ACPI, which ends bochs; give it a
# moment, then stop it (bochs ignores SIGTERM while running, hence SIGKILL).
if [[ $result == finished ]]; then
    for _ in {1..20}; do kill -0 "$bochs_pid" 2>/dev/null || break; sleep 0.25; done
fi
kill -KILL "$bochs_pid" 2>/dev/null || true
wait "$bochs_pid" 2>/dev/null || true
bochs_pid=""
wait "$tail_pid" 2>/dev/null || true   # tail exits once bochs is gone
tail_pid=""

status=$(tr -d '\r' <"$serial" | sed -n "/^$start_marker\$/,\$p" |
    grep -aoE 'EMU_EXIT_STATUS=[0-9]+$' | tail -n 1 | cut -d= -f2) || true
if [[ -n $status && $result != timeout ]]; then
    log "boot ${boot_time}s + run $(awk -v a="$boot_time" -v b="$run_end" 'BEGIN { printf "%.1f", b - a }')s (wall); exit status $status"
    exit "$status"
fi
if [[ $result == timeout ]]; then
    if [[ -n $boot_time ]]; then
        log "timeout after ${timeout}s (the program had started after ${boot_time}s)"
    else
        log "timeout after ${timeout}s (the program never started)"
    fi
    [[ -n $boot_time ]] || { tail -n 20 "$serial" | tr -d '\r' >&2; }
    exit 124
fi
log "no exit status from the guest (${result:-emulator exited}); last console lines:"
tail -n 30 "$serial" | tr -d '\r' >&2
[[ -s $serial ]] || tail -n 5 "$work/bochs.out" >&2
exit 125
