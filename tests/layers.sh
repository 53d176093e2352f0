#!/bin/sh
# layers.sh: proves that the build keeps the layers one-directional (meson.build's layer_dirs).
#
#   layers.sh SOURCE_ROOT LAYER=DIR,DIR,... ... -- CC [CC ARGS...]
#
# Each LAYER=DIRS is a layer's folder and its include path exactly as meson.build compiles it
# (its own folder first). For every layer:
#   1. each header of its own folder compiles with that include path alone (the probe works);
#   2. a header of every other project folder NOT on its path does not compile: an upward include
#      (nn/ including models/model.h, models/ including train/setup.h) or one of autograd's
#      private headers (autograd/internal/) from above is a build error, not a convention;
#   3. no source or header of the folder names a path in a quoted include ("../models/model.h",
#      "internal/threadpool.h"), the one way around the include path.
# Exit 0 when all hold; else one line per broken rule, exit 1.
set -u
root=$1
shift
specs=
while [ "$1" != "--" ]; do
    specs="$specs $1"
    shift
done
shift # the compiler command follows

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
all_dirs=
for spec in $specs; do
    for d in $(echo "${spec#*=}" | tr , ' '); do
        case " $all_dirs " in *" $d "*) ;; *) all_dirs="$all_dirs $d" ;; esac
    done
done

probe() { # probe HEADER INCFLAGS...: compiles a file that includes HEADER; status 0 if it compiles
    h=$1
    shift
    printf '#include "%s"\nint tz_layers_probe;\n' "$h" >"$tmp/probe.c"
    "$@" -D_DEFAULT_SOURCE -fsyntax-only "$tmp/probe.c" >"$tmp/log" 2>&1
}

for spec in $specs; do
    layer=${spec%%=*}
    dirs=$(echo "${spec#*=}" | tr , ' ')
    own=${dirs%% *}
    flags=
    for d in $dirs; do flags="$flags -I$root/$d"; done
    n_own=0
    for h in "$root/$own"/*.h; do
        [ -e "$h" ] || continue
        n_own=$((n_own + 1))
        # shellcheck disable=SC2086
        if ! probe "$(basename "$h")" "$@" $flags; then
            echo "layers: $layer: its own header $own/$(basename "$h") does not compile with its include path:"
            sed 's/^/    /' "$tmp/log"
            fail=1
        fi
    done
    for d in $all_dirs; do
        case " $dirs " in *" $d "*) continue ;; esac
        for h in "$root/$d"/*.h; do
            [ -e "$h" ] || continue
            # a header whose name is also in one of the layer's own folders is found there: skip it
            seen=0
            for o in $dirs; do [ -e "$root/$o/$(basename "$h")" ] && seen=1; done
            [ $seen = 1 ] && continue
            # shellcheck disable=SC2086
            if probe "$(basename "$h")" "$@" $flags; then
                echo "layers: $layer ($own/) can include $d/$(basename "$h"): a layer it must not see is on its include path"
                fail=1
            fi
        done
    done
    if grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/' "$root/$own"/*.[ch] 2>/dev/null; then
        echo "layers: $layer: the includes above name a path; include by name, through the layer's include path"
        fail=1
    fi
    [ "$n_own" -gt 0 ] || { echo "layers: $layer: no headers in $own/ (wrong root?)"; fail=1; }
done
[ $fail = 0 ] && echo "layers: ok ($(echo $specs | wc -w) layers)"
exit $fail
