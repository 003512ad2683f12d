#!/usr/bin/env bash
# Stop the one-node SLURM cluster of scripts/slurm/start.sh: cancel its jobs, then stop
# slurmd, slurmctld, slurmdbd, MariaDB and (when start.sh started it) munged. Only daemons
# whose pid files are in $MER_SLURM_DIR are stopped. Config, accounting and logs stay for the
# next start; safe to run when nothing is up.
set -uo pipefail

STATE=${MER_SLURM_DIR:-/var/lib/mer-lightning-slurm}
export SLURM_CONF=$STATE/etc/slurm.conf

running() {  # running PIDFILE: the process of a pid file is alive and is the daemon named
    # in the file's name (a pid file left by a killed daemon may name a reused pid)
    local name pid
    name=$(basename "$1" .pid)
    [[ -s $1 ]] && pid=$(cat "$1") && [[ -r /proc/$pid/comm ]] &&
        [[ $(cat "/proc/$pid/comm") == "${name/mysqld/mariadbd}" ]]
}

stop() {  # stop NAME PIDFILE: SIGTERM, wait up to 20 s, then SIGKILL
    local name=$1 pidfile=$2 pid
    running "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || {
            echo "stop.sh: $name stopped"
            return 0
        }
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null
    echo "stop.sh: $name killed (did not stop within 20 s)"
}

if [[ ! -d $STATE ]]; then
    echo "stop.sh: no local cluster in $STATE"
    exit 0
fi
if running "$STATE/run/slurmctld.pid"; then
    mapfile -t jobs < <(squeue -h -o %i 2>/dev/null)
    ((${#jobs[@]} == 0)) || scancel "${jobs[@]}" 2>/dev/null
fi
stop slurmd "$STATE/run/slurmd.pid"
stop slurmctld "$STATE/run/slurmctld.pid"
stop slurmdbd "$STATE/run/slurmdbd.pid"
stop MariaDB "$STATE/mysql-run/mysqld.pid"
if [[ -f $STATE/run/munged.ours ]]; then
    stop munged /run/munge/munged.pid
    rm -f "$STATE/run/munged.ours"
fi
exit 0
