#!/usr/bin/env bash
# A real Slurm cluster on this one machine for kitt's tests: munged, slurmctld and two
# compute nodes (slurmd -N n1 and -N n2 on ports of their own, NodeAddr=127.0.0.1), from
# Debian's slurm-wlm and munge. Everything lives in a state directory outside the checkout
# ($KITT_SLURM_DIR, default ~/.cache/kitt/slurm-test); every daemon is stopped by its pid.
#
#   scripts/slurm-cluster.sh start   # prints SLURM_CONF=... (eval it, like fetch-llama.sh)
#   scripts/slurm-cluster.sh stop
#   scripts/slurm-cluster.sh status
set -euo pipefail

state="${KITT_SLURM_DIR:-$HOME/.cache/kitt/slurm-test}"
conf="$state/slurm.conf"
ctld_port="${KITT_SLURM_PORT:-16817}"
nodes=(n1 n2)

say() { echo "slurm-cluster: $*" >&2; }

stop_pid() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid
  pid="$(cat "$file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  for n in "${nodes[@]}"; do stop_pid "$state/slurmd-$n.pid"; done
  stop_pid "$state/slurmctld.pid"
  stop_pid "$state/munge/munged.pid"
}

write_config() {
  local cpus mem
  cpus="$(nproc)"
  # Half the memory for each node, in MiB: the two nodes share this machine.
  mem="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))"
  cat >"$conf" <<EOF
ClusterName=kitt-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool-%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd-%n.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=n1 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=$((ctld_port + 1)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=$((ctld_port + 2)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null || {
    say "slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)"
    exit 1
  }
  stop
  mkdir -p "$state/munge" "$state/ctld"
  chmod 700 "$state" "$state/munge"
  for n in "${nodes[@]}"; do mkdir -p "$state/spool-$n"; done
  if [ ! -s "$state/munge/munge.key" ]; then
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$state/munge/munge.key"
  munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed"
  write_config
  export SLURM_CONF="$conf"
  slurmctld -f "$conf"
  for n in "${nodes[@]}"; do slurmd -f "$conf" -N "$n"; done
  # Wait until both nodes are up.
  for _ in $(seq 100); do
    if [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -cE '(idle|mix|alloc)$')" -eq 2 ]; then
      echo "SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.2
  done
  say "the nodes did not come up; sinfo says:"
  sinfo -N >&2 || true
  tail -n 20 "$state/slurmctld.log" >&2 || true
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF="$conf" sinfo -N ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
