#!/bin/sh
# signal_rank.sh SIGNAL FILE COMMAND...: run COMMAND as an MPI rank; rank 1
# gets SIGNAL (KILL: it dies; STOP: it hangs) once FILE exists (the first
# checkpoint), so that the other ranks must notice without it.
signal=$1 file=$2
shift 2
if [ "$OMPI_COMM_WORLD_RANK" != 1 ]; then
  exec "$@"
fi
"$@" &
pid=$!
while [ ! -e "$file" ] && kill -0 "$pid" 2> /dev/null; do
  sleep 0.1
done
kill -"$signal" "$pid"
wait "$pid"
