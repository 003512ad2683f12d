#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, to try hydra/launcher=slurm_local and to run
# the tests marked `slurm`. Run as root; safe to run again (what is up stays up).
#
#   bash scripts/slurm/start.sh        # installs what is missing, starts, waits for an idle node
#   bash scripts/slurm/stop.sh         # stops what this script started
#
# What it starts: munged (authentication), MariaDB and slurmdbd (job accounting, which `sacct`
# and submitit read to learn how a job ended), slurmctld (the controller) and slurmd (this
# machine as the only node, with its real CPU count and memory, in one partition `local`).
# Everything it writes lives in $MER_SLURM_DIR (default /var/lib/mer-lightning-slurm): config,
# state, logs. /etc/slurm/slurm.conf becomes a link to its slurm.conf, so sinfo, sbatch and
# sacct find the cluster from any shell; a machine with a slurm.conf of its own is left alone.
# On failure the reason is also written to $MER_SLURM_DIR/start-error, which the tests quote
# when they skip.
set -euo pipefail

STATE=${MER_SLURM_DIR:-/var/lib/mer-lightning-slurm}
DB_PORT=${MER_SLURM_DB_PORT:-6829}          # MariaDB on 127.0.0.1 only, for slurmdbd
PARTITION=local
CLUSTER=local
ETC_LINK=/etc/slurm/slurm.conf
export SLURM_CONF=$STATE/etc/slurm.conf

fail() {
    echo "start.sh: $*" >&2
    mkdir -p "$STATE" && echo "$*" >"$STATE/start-error"
    exit 1
}
log() { echo "start.sh: $*"; }

running() {  # running PIDFILE: the process of a pid file is alive and is the daemon named
    # in the file's name (a pid file left by a killed daemon may name a reused pid)
    local name pid
    name=$(basename "$1" .pid)
    [[ -s $1 ]] && pid=$(cat "$1") && [[ -r /proc/$pid/comm ]] &&
        [[ $(cat "/proc/$pid/comm") == "${name/mysqld/mariadbd}" ]]
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
    local seconds=$1 what=$2
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    fail "$what did not come up within ${seconds}s; see the logs in $STATE/log"
}

[[ $EUID -eq 0 ]] || fail "run as root (it installs packages and starts system daemons)"
rm -f "$STATE/start-error"

# 1. Packages: slurm-wlm (slurmctld, slurmd, clients), slurmdbd and MariaDB (accounting), munge.
missing=()
for command in munged slurmctld slurmd slurmdbd sinfo mariadbd mariadb-install-db; do
    command -v "$command" >/dev/null || missing+=("$command")
done
if ((${#missing[@]})); then
    log "installing slurm-wlm, slurmdbd, munge and mariadb-server (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    mkdir -p "$STATE/log"
    apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server \
        >"$STATE/log/apt.log" 2>&1 ||
        fail "apt-get could not install slurm-wlm, slurmdbd, munge and mariadb-server: $(tail -n 1 "$STATE/log/apt.log")"
fi

if [[ -e $ETC_LINK && $(readlink -f "$ETC_LINK") != "$(readlink -f "$SLURM_CONF")" ]]; then
    fail "$ETC_LINK exists and is not this script's: this machine has a SLURM cluster of its own; use it (hydra/launcher=slurm), or move that file away to start a local one"
fi

mkdir -p "$STATE"/{etc,log,run,ctld,spool} "$STATE/mysql-run"
chown mysql:mysql "$STATE/mysql-run"

# 2. Config for this host: its short name, real CPUs and memory as slurmd measures them.
host=$(hostname -s)
getent hosts "$host" >/dev/null || fail "the host name $host does not resolve (add '127.0.0.1 $host' to /etc/hosts)"
node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
[[ -f $STATE/etc/db-password ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/etc/db-password")
db_password=$(cat "$STATE/etc/db-password")

new_conf=$(
    cat <<EOF
# One-node cluster written by scripts/slurm/start.sh; rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
ReturnToService=2
EnforcePartLimits=ALL
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
KillWait=10
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
new_dbd=$(
    cat <<EOF
# Accounting daemon of the one-node cluster, written by scripts/slurm/start.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$db_password
StorageLoc=slurm_acct_db
EOF
)
changed=false
if [[ ! -f $SLURM_CONF || $(cat "$SLURM_CONF") != "$new_conf" ]]; then
    echo "$new_conf" >"$SLURM_CONF"
    changed=true
fi
(umask 077 && echo "$new_dbd" >"$STATE/etc/slurmdbd.conf")
mkdir -p /etc/slurm
ln -sfn "$SLURM_CONF" "$ETC_LINK"
if $changed && running "$STATE/run/slurmctld.pid"; then
    log "slurm.conf changed; restarting the controller and the node"
    scontrol shutdown >/dev/null 2>&1 || true
    for ((i = 0; i < 40; i++)); do
        running "$STATE/run/slurmctld.pid" || running "$STATE/run/slurmd.pid" || break
        sleep 0.5
    done
fi

# 3. munged: the default socket, shared with any munged already running.
if ! munge -n >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged
    touch "$STATE/run/munged.ours"  # stop.sh stops munged only when this script started it
    wait_for 20 munged munge -n
    log "munged started"
fi

# 4. MariaDB (own data dir, 127.0.0.1:$DB_PORT and a socket in $STATE) and slurmdbd.
mysql_pid=$STATE/mysql-run/mysqld.pid
mysql_sock=$STATE/mysql-run/mysqld.sock
if ! running "$mysql_pid"; then
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 ||
            fail "mariadb-install-db failed; see $STATE/log/mariadb-install.log"
    fi
    setsid mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" --socket="$mysql_sock" \
        --pid-file="$mysql_pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-buffer-pool-size=64M --log-error="$STATE/log/mariadb.log" </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mariadb-admin --no-defaults --socket="$mysql_sock" ping
    log "MariaDB started"
fi
mariadb --no-defaults --socket="$mysql_sock" -u root -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password';
    ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not set up the accounting database"
if ! running "$STATE/run/slurmdbd.pid"; then
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n show cluster
    log "slurmdbd started"
fi
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

# 5. slurmctld and slurmd, then wait until the node is idle.
if ! running "$STATE/run/slurmctld.pid"; then
    slurmctld
    wait_for 30 slurmctld scontrol ping
    log "slurmctld started"
fi
if ! running "$STATE/run/slurmd.pid"; then
    slurmd
    log "slurmd started"
fi
for ((i = 0; i < 120; i++)); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
    case $state in
    idle | mixed | allocated) break ;;
    down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
[[ $state =~ ^(idle|mixed|allocated)$ ]] || fail "node $host is '${state:-unknown}', not idle; see $STATE/log/slurmd.log and slurmctld.log"
sinfo
log "cluster '$CLUSTER' is up: partition $PARTITION, node $host ($(echo "$node" | grep -o 'CPUs=[0-9]*'), $(echo "$node" | grep -o 'RealMemory=[0-9]*') MB)"
