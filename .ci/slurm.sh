#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for the SLURM tests (tests/test_slurm.py).
#
#   bash .ci/slurm.sh start    install slurm-wlm + munge if missing, write /etc/slurm/slurm.conf,
#                              start munged, slurmctld, slurmd; wait until the node is idle
#   bash .ci/slurm.sh stop     cancel jobs, stop the three daemons by their pidfiles
#   bash .ci/slurm.sh status   print the daemons and sinfo; exit 0 only when the node is idle
#
# Needs root and a Debian machine without systemd (daemons are started directly). The config must live at
# /etc/slurm/slurm.conf: the SLURM executor plugin's job step strips SLURM_* variables, so SLURM_CONF would
# not reach the srun inside each job. There is no slurmdbd, so `sacct` does not work: use the executor flag
# `--slurm-status-command squeue`, which is reliable here because MinJobAge (600 s) is well above
# 3 x `--slurm-init-seconds-before-status-checks`. Runtime files (state, logs, pidfiles) live in
# $SLURM_CI_DIR (default /tmp/slurm-ci).
set -euo pipefail

DIR="${SLURM_CI_DIR:-/tmp/slurm-ci}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by pnas .ci/slurm.sh"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID="$DIR/slurmctld.pid"
SLURMD_PID="$DIR/slurmd.pid"
START_TIMEOUT_S="${SLURM_CI_START_TIMEOUT:-120}"
PARTITION=debug
NODE=localhost

log() { echo "slurm.sh: $*" >&2; }

alive() { # alive NAME PIDFILE: the process in PIDFILE is running and is NAME (not a reused pid)
    [[ -s "$2" ]] && [[ "$(cat "/proc/$(cat "$2")/comm" 2>/dev/null)" == "$1" ]]
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
    if [[ -f "$CONF" ]] && ! grep -qF "$MARKER" "$CONF"; then
        log "refusing to overwrite $CONF: it was not written by this script (a real cluster's config?)"
        exit 1
    fi
    local cpus mem_total real_mem
    cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
    mem_total=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    real_mem=$((mem_total * 9 / 10)) # must stay below what slurmd detects, or the node is drained
    mkdir -p /etc/slurm "$DIR/state" "$DIR/spool"
    local tmp="$CONF.tmp.$$"
    cat >"$tmp" <<EOF
$MARKER; edits are lost on the next start
ClusterName=pnasci
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$tmp" "$CONF"
}

start_munge() {
    if alive munged "$MUNGE_PID"; then
        return
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create --keyfile /etc/munge/munge.key
    fi
    runuser -u munge -- /usr/sbin/munged
    munge -n | unmunge >/dev/null
}

node_state() {
    sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null | head -n1
}

wait_idle() {
    local deadline=$((SECONDS + START_TIMEOUT_S)) state=""
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        if [[ "$state" == "idle" ]]; then
            return 0
        fi
        sleep 1
    done
    log "node $NODE not idle after ${START_TIMEOUT_S}s (state: '${state:-no answer}'); see $DIR/*.log"
    return 1
}

cmd_start() {
    local t0=$SECONDS
    install_packages
    write_conf
    start_munge
    if ! alive slurmctld "$CTLD_PID"; then
        slurmctld -c # -c: forget jobs from an earlier run
    fi
    if ! alive slurmd "$SLURMD_PID"; then
        slurmd -N "$NODE"
    fi
    wait_idle
    log "cluster up in $((SECONDS - t0))s: partition '$PARTITION', node '$NODE', logs in $DIR"
}

stop_pidfile() { # stop_pidfile NAME PIDFILE: TERM the process, wait up to 30 s, then KILL it
    local name=$1 pidfile=$2 pid
    if ! alive "$name" "$pidfile"; then
        rm -f "$pidfile"
        return
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ($pid) ignored TERM; killing it"
        kill -KILL "$pid"
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    if alive slurmctld "$CTLD_PID"; then
        local jobs
        jobs=$(squeue --noheader --format=%i 2>/dev/null || true)
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086
            scancel $jobs || true
            for _ in $(seq 30); do
                [[ -z "$(squeue --noheader --states=RUNNING,COMPLETING --format=%i 2>/dev/null)" ]] && break
                sleep 1
            done
        fi
    fi
    stop_pidfile slurmd "$SLURMD_PID"
    stop_pidfile slurmctld "$CTLD_PID"
    stop_pidfile munged "$MUNGE_PID"
    log "stopped"
}

cmd_status() {
    local name pidfile up=0
    for pair in "munged:$MUNGE_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
        name=${pair%%:*}
        pidfile=${pair#*:}
        if alive "$name" "$pidfile"; then
            echo "$name: running (pid $(cat "$pidfile"))"
        else
            echo "$name: not running"
            up=1
        fi
    done
    if ((up == 0)); then
        sinfo
        [[ "$(node_state)" == "idle" ]] || up=1
    fi
    return $up
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
