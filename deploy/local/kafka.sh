#!/usr/bin/env bash
# A real, single-node Apache Kafka broker (KRaft combined mode) for local demos and tests.
#
#   deploy/local/kafka.sh start [--port N] [--sasl-port N]   start in the background, print bootstrap
#   deploy/local/kafka.sh stop                              stop it and delete its data
#   deploy/local/kafka.sh status                            print bootstrap address, exit 1 if down
#   deploy/local/kafka.sh classpath                         resolve the jars (Maven) and print the classpath
#   deploy/local/kafka.sh foreground --dir D --port N [--controller-port N] [--sasl-port N]
#                                                           run in the foreground (used by the tests)
#
# The jars come from Maven Central through deploy/local/kafka/pom.xml and stay in Maven's local
# repository; the resolved classpath is cached in .cache/kafka/ (git-ignored).
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

write_config() {  # dir port controller_port sasl_port
  local dir=$1 port=$2 cport=$3 sport=$4
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protomap="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ "$sport" != "0" ]; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$sport"
    advertised="$advertised,SASL_PLAINTEXT://127.0.0.1:$sport"
    protomap="$protomap,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protomap
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.check.interval.ms=600000
EOF
  if [ "$sport" != "0" ]; then
    cat >> "$dir/server.properties" <<EOF
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_worker="worker-secret";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  fi
}

format_storage() {  # dir sasl_port
  local dir=$1 sport=$2 cp
  cp=$(classpath)
  local extra=()
  if [ "$sport" != "0" ]; then
    extra=(--add-scram 'SCRAM-SHA-256=[name=worker,password=worker-secret]'
           --add-scram 'SCRAM-SHA-512=[name=worker,password=worker-secret]')
  fi
  "$(java_bin)" -cp "$cp" kafka.tools.StorageTool format --standalone -t "$("$(java_bin)" -cp "$cp" kafka.tools.StorageTool random-uuid)" \
    -c "$dir/server.properties" "${extra[@]}" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; return 1; }
}

run_foreground() {  # dir port cport sport
  local dir=$1 port=$2 cport=$3 sport=$4 cp
  mkdir -p "$dir/data"
  write_config "$dir" "$port" "$cport" "$sport"
  # a directory that already holds a cluster is started again as it is (a restart keeps its topics)
  [ -f "$dir/data/meta.properties" ] || format_storage "$dir" "$sport"
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

cmd=${1:-status}; shift || true
port=0; cport=0; sport=0; dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --controller-port) cport=$2; shift 2 ;;
    --sasl-port) sport=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

case "$cmd" in
  classpath) classpath ;;
  foreground)
    [ -n "$dir" ] && [ "$port" != 0 ] || { echo "foreground needs --dir and --port" >&2; exit 2; }
    [ "$cport" != 0 ] || cport=$(free_port)
    run_foreground "$dir" "$port" "$cport" "$sport" ;;
  start)
    if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      echo "already running: $(cat "$state/bootstrap")"; exit 0
    fi
    rm -rf "$state"; mkdir -p "$state"
    [ "$port" != 0 ] || port=9092
    cport=$(free_port)
    classpath >/dev/null
    nohup "$0" foreground --dir "$state" --port "$port" --controller-port "$cport" --sasl-port "$sport" \
      >"$state/broker.log" 2>&1 &
    echo $! > "$state/pid"
    echo "127.0.0.1:$port" > "$state/bootstrap"
    if wait_ready "$port" "$(cat "$state/pid")"; then
      echo "Apache Kafka 4.3.1 is up at $(cat "$state/bootstrap") (log: $state/broker.log)"
    else
      echo "the broker did not come up; its log:" >&2; tail -30 "$state/broker.log" >&2; exit 1
    fi ;;
  stop)
    if [ -f "$state/pid" ]; then
      pid=$(cat "$state/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$state"; echo "stopped" ;;
  status)
    if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      echo "running: $(cat "$state/bootstrap")"
    else
      echo "not running"; exit 1
    fi ;;
  *) echo "usage: $0 start|stop|status|classpath|foreground" >&2; exit 2 ;;
esac
