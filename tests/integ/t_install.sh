#!/usr/bin/env bash
# Operability of the build: every program's --version names the version and the build (compiler,
# flags, library versions, defaults); `make install DESTDIR=... PREFIX=/usr` puts the programs
# and one manual page per program in place, each page renders without a warning and lists
# every option its program's --help shows; `make uninstall` removes them all.
. "$(dirname "$0")/lib.sh"

root=$_root_dir
progs="broker worker worker-pool router ctl"
version=$(sed -n 's/^VERSION *:= *//p' "$root/Makefile")
isnt "$version" "" "the Makefile states the version"

for p in $progs; do
    run "$SLUICE_BIN/$p" --version
    is "$RC" 0 "$p --version exits 0"
    is "$(head -n 1 <<<"$OUT")" "$p $version" "$p --version: first line '$p $version'"
    for key in 'compiler: (gcc|clang) ' 'cflags: .*-O' 'sanitizers: ' \
        'nng: 1\.[0-9]+\.[0-9]+ \(built against 1\.' 'msgpack-c: [0-9]+\.[0-9]+\.[0-9]+ \(built against ' \
        'mariadb-client: [0-9.]+ \(built against MariaDB Connector/C [0-9.]+\)' \
        'journal: --fsync always' 'runtime directory: \$SLUICE_DIR, else \$XDG_RUNTIME_DIR/sluice, else /tmp/sluice-\$UID'; do
        if grep -Eq "^$key" <<<"$OUT"; then
            pass "$p --version: /^$key/"
        else
            fail "$p --version: /^$key/" "$OUT"
        fi
    done
done
case $SLUICE_BIN in
*/build/san/bin) like "$("$SLUICE_BIN/broker" --version)" $'\nsanitizers: address undefined' \
    "a SANITIZE=1 build says so" ;;
*) like "$("$SLUICE_BIN/broker" --version)" $'\nsanitizers: none' "a plain build says so" ;;
esac

# The tree's own make, in the configuration of the programs under test, without the parent
# make's job server or the package check.
mk() {
    local -a san=()
    [[ "$SLUICE_BIN" == */build/san/bin ]] && san=(SANITIZE=1)
    env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS SLUICE_NO_DEPS=1 make -s -C "$root" "${san[@]}" "$@"
}

dest=$SLUICE_DIR/dest
ok "make install DESTDIR=... PREFIX=/usr" mk install DESTDIR="$dest" PREFIX=/usr
for p in $progs; do
    ok "installed: /usr/bin/$p, executable" test -x "$dest/usr/bin/$p"
    ok "installed: /usr/share/man/man1/$p.1" test -f "$dest/usr/share/man/man1/$p.1"
done
is "$(find "$dest" -type f | wc -l)" 10 "nothing else is installed"
run "$dest/usr/bin/ctl" --version
is "$(head -n 1 <<<"$OUT")" "ctl $version" "the installed ctl runs"

if command -v groff >/dev/null; then
    for p in $progs; do
        page=$dest/usr/share/man/man1/$p.1
        run env LC_ALL=C.UTF-8 groff -man -ww -z "$page"
        is "$RC:$ERR" "0:" "$p.1 renders without warnings (groff -man -ww)"
        run env LC_ALL=C.UTF-8 groff -man -Tutf8 -P-cbou "$page"
        like "$OUT" $'NAME\n +'"$p"' +- ' "$p.1 has a NAME line"
        like "$OUT" $'\nSYNOPSIS\n' "$p.1 has a SYNOPSIS"
        like "$OUT" $'\nSIGNALS\n' "$p.1 says what SIGTERM and SIGINT do"
    done
else
    pass "# SKIP groff is not installed (scripts/deps --test installs groff-base)"
fi

# Every long option of --help (and, for ctl, of each command's help) is in the page.
# long_opts TEXT: the long option names of a --help text, one per line.
long_opts() {
    sed -n 's/^ \{2,\}\(-[A-Za-z0-9], \)\{0,1\}--\([a-z][a-z0-9-]*\).*/\2/p' <<<"$1"
}
for p in $progs; do
    page=$dest/usr/share/man/man1/$p.1
    missing=""
    n=0
    for o in $(long_opts "$("$SLUICE_BIN/$p" --help)"); do
        n=$((n + 1))
        grep -qF "\\fB\\-\\-${o//-/\\-}\\fR" "$page" || missing="$missing --$o"
    done
    cmp_num "$n" -ge 4 "$p --help lists options"
    is "$missing" "" "$p.1 documents every option of $p --help"
done
page=$dest/usr/share/man/man1/ctl.1
missing=""
for c in push stats "queues create" "routes set" purge ping workers scale "dead retry" events migrate configure; do
    grep -qxF ".SS \"$c\"" "$page" || missing="$missing [$c]"
    # shellcheck disable=SC2086
    for o in $(long_opts "$("$SLUICE_BIN/ctl" help $c)"); do
        grep -qF "\\fB\\-\\-${o//-/\\-}\\fR" "$page" || missing="$missing $c:--$o"
    done
done
is "$missing" "" "ctl.1 has a section per command with every option of its help"

ok "make uninstall DESTDIR=... PREFIX=/usr" mk uninstall DESTDIR="$dest" PREFIX=/usr
is "$(find "$dest" -type f | wc -l)" 0 "make uninstall removes every installed file"

done_testing
