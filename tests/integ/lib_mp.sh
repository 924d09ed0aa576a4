# Sourced by integration scripts that build raw requests for sl-send: msgpack encoders that
# print hex (no spaces), to be concatenated. Bash only; strings are taken byte for byte
# (LC_ALL=C), so a name can carry bytes no well-behaved client would send.
#
#   req=$(mp_map 3)$(mp_str op)$(mp_str push)$(mp_str group)$(mp_str bob)
#   req+=$(mp_str payloads)$(mp_array 2)$(mp_bin a)$(mp_bin bc)
#   "$SLUICE_TESTBIN/sl-send" "$url" --hex "$req"
#
# mp_hexstr HEX: a str of the bytes HEX (for bytes a shell string cannot hold, such as NUL).

# The bytes of $1 as hex. Up to 1 KiB by bash itself, byte by byte: a request is built from
# dozens of strings, and od and tr for each (a subshell, two programs) made building one 100-job
# push take seconds on a loaded machine. ${c: -2}: the last two digits, should printf extend
# the sign of a byte over 0x7f.
_mp_hex() {
    local LC_ALL=C
    if [ "${#1}" -gt 1024 ]; then
        printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
        return
    fi
    local i c out=
    for ((i = 0; i < ${#1}; i++)); do
        printf -v c '%02x' "'${1:i:1}"
        out+=${c: -2}
    done
    printf '%s' "$out"
}

# _mp_len HEADER8 HEADER16 HEADER32 N: the header of a str/bin/array/map of N items.
_mp_len() {
    if [ "$4" -lt 256 ] && [ -n "$1" ]; then
        printf '%s%02x' "$1" "$4"
    elif [ "$4" -lt 65536 ]; then
        printf '%s%04x' "$2" "$4"
    else
        printf '%s%08x' "$3" "$4"
    fi
}

mp_nil() { printf c0; }
mp_true() { printf c3; }
mp_false() { printf c2; }

# mp_uint N: 0 to 2^63-1 (bash arithmetic is signed 64-bit).
mp_uint() {
    local n=$1
    if [ "$n" -lt 128 ]; then
        printf '%02x' "$n"
    elif [ "$n" -lt 256 ]; then
        printf 'cc%02x' "$n"
    elif [ "$n" -lt 65536 ]; then
        printf 'cd%04x' "$n"
    elif [ "$n" -lt 4294967296 ]; then
        printf 'ce%08x' "$n"
    else
        printf 'cf%016x' "$n"
    fi
}

# mp_int N: a negative integer as int64 (any N < 0).
mp_int() {
    printf 'd3%016x' "$1"
}

mp_hexstr() {
    local hex=$1 n=$((${#1} / 2))
    if [ "$n" -lt 32 ]; then
        printf '%02x' $((0xa0 | n))
    else
        _mp_len d9 da db "$n"
    fi
    printf '%s' "$hex"
}

mp_str() {
    mp_hexstr "$(_mp_hex "$1")"
}

mp_bin() {
    local hex
    hex=$(_mp_hex "$1")
    _mp_len c4 c5 c6 $((${#hex} / 2))
    printf '%s' "$hex"
}

mp_array() {
    if [ "$1" -lt 16 ]; then
        printf '%02x' $((0x90 | $1))
    else
        _mp_len '' dc dd "$1"
    fi
}

mp_map() {
    if [ "$1" -lt 16 ]; then
        printf '%02x' $((0x80 | $1))
    else
        _mp_len '' de df "$1"
    fi
}

# mp_push GROUP CLIENT SEQ PAYLOAD...: a push request; CLIENT "" leaves out the idempotency key.
mp_push() {
    local group=$1 client=$2 seq=$3 p
    shift 3
    if [ -n "$client" ]; then
        mp_map 5
    else
        mp_map 3
    fi
    mp_str op
    mp_str push
    mp_str group
    mp_str "$group"
    if [ -n "$client" ]; then
        mp_str client
        mp_str "$client"
        mp_str seq
        mp_uint "$seq"
    fi
    mp_str payloads
    mp_array "$#"
    for p in "$@"; do
        mp_bin "$p"
    done
}

# mp_op OP [KEY TYPE VALUE]...: a request of op OP and fields, TYPE one of str, uint, bool, hex
# (VALUE is already encoded msgpack in hex).
mp_op() {
    local op=$1
    shift
    mp_map $((1 + $# / 3))
    mp_str op
    mp_str "$op"
    while [ "$#" -ge 3 ]; do
        mp_str "$1"
        case $2 in
        str) mp_str "$3" ;;
        uint) mp_uint "$3" ;;
        bool) if [ "$3" = true ]; then mp_true; else mp_false; fi ;;
        hex) printf '%s' "$3" ;;
        *) echo "mp_op: unknown type '$2'" >&2; return 1 ;;
        esac
        shift 3
    done
}
