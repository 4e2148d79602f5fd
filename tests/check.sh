# Sourced by the shell tests: the binary and source folder that CTest passes, a temporary
# folder removed at exit, and one line per check ("OK" / "NOT OK" and its name).
bin=${MP_BINARY:?set by CTest}
src=${MP_SOURCE_DIR:?set by CTest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() {  # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then echo "OK     $name"; passed=$((passed + 1)); else echo "NOT OK $name"; failed=$((failed + 1)); fi
}
json_field() {  # json_field FIELD TEXT -> the number
    sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"
}
check_summary() {  # the closing line; the exit status says whether all passed
    echo "$passed passed, $failed failed"
    test "$failed" -eq 0
}
