# Sourced after lib.sh by scripts that start and stop several brokers in one run.
#
#   retire_pgrp PGID NAME   for a process group this script started and has already stopped:
#                           keeps its log as NAME.log (lib.sh prints the log of each process it
#                           started, by the name it was spawned with, so a second broker would
#                           otherwise show the last broker.log twice) and takes it off the list
#                           lib.sh signals at exit. Process ids are reused (pid_max is 32768 on
#                           small machines), so a group that ended long ago may by then be
#                           somebody else's: it must not get TERM from our cleanup.

retire_pgrp() {
    local pg=$1 name=$2 i old
    for i in "${!_pgids[@]}"; do
        [ "${_pgids[i]}" = "$pg" ] || continue
        old=${_pg_names[i]}
        if [ -e "$SLUICE_DIR/$old.log" ] && [ "$old" != "$name" ]; then
            mv "$SLUICE_DIR/$old.log" "$SLUICE_DIR/$name.log"
        fi
        _pg_names[i]=$name
        # An empty entry: cleanup's kill and wait on it fail quietly, and no group matches it.
        _pgids[i]=
    done
}
