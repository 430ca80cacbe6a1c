#!/usr/bin/env bash
# Real Apache Kafka on loopback for local demos and tests: one node (KRaft combined broker + controller),
# or a cluster of three such nodes.
#
#   deploy/local/kafka.sh start [--port N] [--sasl-port N] [--brokers 1|3]
#                                   start in the background, print the bootstrap address. With --brokers 3
#                                   the nodes listen on N, N+1 and N+2 (default 9092-9094; their SASL
#                                   listeners likewise from --sasl-port); topics are created with
#                                   replication factor 3 and min.insync.replicas 2
#   deploy/local/kafka.sh stop      stop it (every node) and delete its data
#   deploy/local/kafka.sh status    print the bootstrap address, exit 1 if down
#   deploy/local/kafka.sh classpath resolve the jars (Maven) and print the classpath
#   deploy/local/kafka.sh foreground --dir D --port N [options]
#                                   run one node in the foreground (used by the tests). Options:
#       --controller-port N          its controller listener (default: a free port)
#       --sasl-port N                a SASL_PLAINTEXT listener (user worker / worker-secret)
#       --node-id N --voters V --cluster-id ID
#                                    a node of a cluster: V is the static quorum, 1@127.0.0.1:PORT,2@...,
#                                    the same on every node, as is the cluster id (any 22-character id)
#       --listener NAME:PROTOCOL:PORT
#                                    one more listener (repeatable), e.g. MTLS:SSL:9095; its TLS or SASL
#                                    settings go in a --properties file as listener.name.mtls.ssl.* etc.
#       --properties FILE            appended to the node's server.properties
#
# A SASL listener (--sasl-port or a SASL_* --listener) knows the user worker / worker-secret for PLAIN,
# SCRAM-SHA-256 and SCRAM-SHA-512. The jars come from Maven Central through deploy/local/kafka/pom.xml
# and stay in Maven's local repository; the resolved classpath is cached in .cache/kafka/ (git-ignored).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/kafka"
state="$cache/state"
mkdir -p "$cache"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

classpath() {
  local cp="$cache/classpath.txt"
  if [ ! -s "$cp" ] || [ "$here/kafka/pom.xml" -nt "$cp" ] || ! head -c 4096 "$cp" | tr ':' '\n' | head -1 | xargs test -f; then
    echo "resolving Apache Kafka jars with Maven (first run only)..." >&2
    mvn -q -B -f "$here/kafka/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cp.tmp" >&2
    mv "$cp.tmp" "$cp"
  fi
  cat "$cp"
}

java_bin() {
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else echo java; fi
}

# The node being run (set from the options below).
dir=""; port=0; cport=0; sport=0; node_id=1; voters=""; cluster_id=""; properties=""; brokers=1
extra_listeners=()

uses_sasl() {
  local l
  [ "$sport" != "0" ] && return 0
  for l in "${extra_listeners[@]+"${extra_listeners[@]}"}"; do
    case "$l" in *:SASL_*) return 0 ;; esac
  done
  return 1
}

write_listeners() {
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protomap="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  local l name proto lport
  if [ "$sport" != "0" ]; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$sport"
    advertised="$advertised,SASL_PLAINTEXT://127.0.0.1:$sport"
    protomap="$protomap,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  for l in "${extra_listeners[@]+"${extra_listeners[@]}"}"; do
    IFS=: read -r name proto lport <<<"$l"
    listeners="$listeners,$name://127.0.0.1:$lport"
    advertised="$advertised,$name://127.0.0.1:$lport"
    protomap="$protomap,$name:$proto"
  done
  echo "listeners=$listeners"
  echo "advertised.listeners=$advertised"
  echo "listener.security.protocol.map=$protomap"
}

write_config() {
  local rf=1 isr=1
  if [ -n "$voters" ]; then rf=3; isr=2; fi
  {
    echo "process.roles=broker,controller"
    echo "node.id=$node_id"
    if [ -n "$voters" ]; then
      echo "controller.quorum.voters=$voters"
    else
      echo "controller.quorum.bootstrap.servers=127.0.0.1:$cport"
    fi
    write_listeners
    cat <<EOF
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.check.interval.ms=600000
EOF
    if uses_sasl; then
      echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
      local l name proto lport lower
      local sasl_names=()
      [ "$sport" != "0" ] && sasl_names+=(SASL_PLAINTEXT)
      for l in "${extra_listeners[@]+"${extra_listeners[@]}"}"; do
        IFS=: read -r name proto lport <<<"$l"
        case "$proto" in SASL_*) sasl_names+=("$name") ;; esac
      done
      for name in "${sasl_names[@]}"; do
        lower=$(echo "$name" | tr '[:upper:]' '[:lower:]')
        echo "listener.name.$lower.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_worker=\"worker-secret\";"
        echo "listener.name.$lower.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
        echo "listener.name.$lower.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      done
    fi
    if [ -n "$properties" ]; then cat "$properties"; fi
  } > "$dir/server.properties"
}

format_storage() {
  local cp id
  cp=$(classpath)
  local extra=(--standalone)
  if [ -n "$voters" ]; then extra=(); fi  # a static quorum: controller.quorum.voters says who votes
  if uses_sasl; then
    extra+=(--add-scram 'SCRAM-SHA-256=[name=worker,password=worker-secret]'
            --add-scram 'SCRAM-SHA-512=[name=worker,password=worker-secret]')
  fi
  id=$cluster_id
  [ -n "$id" ] || id=$("$(java_bin)" -cp "$cp" kafka.tools.StorageTool random-uuid)
  "$(java_bin)" -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" "${extra[@]}" \
    >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; return 1; }
}

run_foreground() {
  local cp
  mkdir -p "$dir/data"
  write_config
  # a directory that already holds a cluster is started again as it is (a restart keeps its topics)
  [ -f "$dir/data/meta.properties" ] || format_storage
  cp=$(classpath)
  exec "$(java_bin)" -Xms256m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$cp" kafka.Kafka "$dir/server.properties"
}

wait_ready() {  # port pid
  local port=$1 pid=$2 i
  for i in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import socket, struct, sys
# ApiVersions v0 request: the broker answers once its listener is up.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
body = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"
s.sendall(struct.pack(">i", len(body)) + body)
n = struct.unpack(">i", s.recv(4))[0]
sys.exit(0 if n > 0 else 1)
PY
    sleep 0.5
  done
  return 1
}

start_background() {
  local n i node_port node_sasl ids=() cports=() quorum="" cid="" bootstrap="" sasl_bootstrap=""
  n=$brokers
  [ "$port" != 0 ] || port=9092
  for i in $(seq 1 "$n"); do cports+=("$(free_port)"); ids+=("$i"); done
  if [ "$n" -gt 1 ]; then
    for i in "${ids[@]}"; do quorum="$quorum${quorum:+,}$i@127.0.0.1:${cports[$((i - 1))]}"; done
    cid=$("$(java_bin)" -cp "$(classpath)" kafka.tools.StorageTool random-uuid)
  fi
  classpath >/dev/null
  for i in "${ids[@]}"; do
    node_port=$((port + i - 1))
    node_sasl=0
    [ "$sport" = 0 ] || node_sasl=$((sport + i - 1))
    local args=(foreground --dir "$state/node-$i" --port "$node_port" --controller-port "${cports[$((i - 1))]}"
                --sasl-port "$node_sasl")
    [ "$n" -gt 1 ] && args+=(--node-id "$i" --voters "$quorum" --cluster-id "$cid")
    mkdir -p "$state/node-$i"
    nohup "$0" "${args[@]}" >"$state/node-$i/broker.log" 2>&1 &
    echo $! > "$state/node-$i/pid"
    bootstrap="$bootstrap${bootstrap:+,}127.0.0.1:$node_port"
    [ "$node_sasl" = 0 ] || sasl_bootstrap="$sasl_bootstrap${sasl_bootstrap:+,}127.0.0.1:$node_sasl"
  done
  echo "$bootstrap" > "$state/bootstrap"
  for i in "${ids[@]}"; do
    if ! wait_ready "$((port + i - 1))" "$(cat "$state/node-$i/pid")"; then
      echo "node $i did not come up; its log:" >&2; tail -30 "$state/node-$i/broker.log" >&2; return 1
    fi
  done
  if [ "$n" -gt 1 ]; then
    echo "Apache Kafka 4.3.1, $n nodes, is up at $bootstrap (logs: $state/node-*/broker.log)"
  else
    echo "Apache Kafka 4.3.1 is up at $bootstrap (log: $state/node-1/broker.log)"
  fi
  [ -z "$sasl_bootstrap" ] || echo "SASL_PLAINTEXT (user worker / worker-secret) at $sasl_bootstrap"
}

node_pids() {
  local f
  for f in "$state"/node-*/pid; do [ -f "$f" ] && cat "$f"; done
  return 0
}

running() {
  local pid
  for pid in $(node_pids); do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

cmd=${1:-status}; shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --controller-port) cport=$2; shift 2 ;;
    --sasl-port) sport=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --node-id) node_id=$2; shift 2 ;;
    --voters) voters=$2; shift 2 ;;
    --cluster-id) cluster_id=$2; shift 2 ;;
    --listener) extra_listeners+=("$2"); shift 2 ;;
    --properties) properties=$2; shift 2 ;;
    --brokers) brokers=$2; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

case "$cmd" in
  classpath) classpath ;;
  foreground)
    [ -n "$dir" ] && [ "$port" != 0 ] || { echo "foreground needs --dir and --port" >&2; exit 2; }
    if [ -n "$voters" ] && [ -z "$cluster_id" ]; then echo "--voters needs --cluster-id" >&2; exit 2; fi
    [ "$cport" != 0 ] || cport=$(free_port)
    run_foreground ;;
  start)
    case "$brokers" in 1|3) ;; *) echo "--brokers: 1 or 3" >&2; exit 2 ;; esac
    if running; then echo "already running: $(cat "$state/bootstrap")"; exit 0; fi
    rm -rf "$state"; mkdir -p "$state"
    start_background ;;
  stop)
    pids=$(node_pids)
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$state"; echo "stopped" ;;
  status)
    if running; then echo "running: $(cat "$state/bootstrap")"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|classpath|foreground" >&2; exit 2 ;;
esac
