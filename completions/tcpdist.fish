# fish completion for tcpdist(1). Installed as share/fish/vendor_completions.d/tcpdist.fish.

# Thread counts: 1 up to the number of processors, at most 64.
function __tcpdist_threads
    set -l n (nproc 2>/dev/null; or echo 4)
    test $n -gt 64; and set n 64
    seq 1 $n
end

complete -c tcpdist -s h -l help -d 'Print usage and exit'
complete -c tcpdist -l version -d 'Print version and exit'
complete -c tcpdist -s n -d 'Check the pool, print "configuration OK" and exit'
complete -c tcpdist -s v -d 'Log every connection event'
complete -c tcpdist -s j -x -k -a '(__tcpdist_threads)' -d 'Worker threads (1-64)'
complete -c tcpdist -s l -x -d 'Listen on ADDR instead of the pool listen lines'
complete -c tcpdist -l metrics -x -d 'Serve Prometheus metrics at http://ADDR/metrics'
complete -c tcpdist -l log-connections -d 'Log one line per finished connection'
complete -c tcpdist -l log-format -x -a 'text logfmt json' -d 'Format of every line'
complete -c tcpdist -l no-splice -d 'Relay with read/write only, never splice(2)'
complete -c tcpdist -l drain-timeout -x -d 'On SIGINT/SIGTERM wait this long (e.g. 10s)'
complete -c tcpdist -l syslog -d 'Log to syslog instead of stderr'
complete -c tcpdist -l control -r -d 'Control socket (or ask the one of a running tcpdist)'
complete -c tcpdist -l takeover -d 'Take the listening sockets of the running tcpdist'
# Asking the running tcpdist.
complete -c tcpdist -n __fish_use_subcommand -f -a status -d 'Pool and backends of the running tcpdist'
complete -c tcpdist -n __fish_use_subcommand -f -a sessions -d 'Its live connections'
complete -c tcpdist -n __fish_use_subcommand -f -a kill -d 'Reset matching connections'
complete -c tcpdist -n '__fish_seen_subcommand_from status sessions' -l json -d 'JSON output'
complete -c tcpdist -n '__fish_seen_subcommand_from sessions kill' -l backend -x -d 'Backend NAME'
complete -c tcpdist -n '__fish_seen_subcommand_from sessions' -l limit -x -d 'At most N sessions'
complete -c tcpdist -n '__fish_seen_subcommand_from kill' -l client -x -d 'Client ADDR[:PORT]'
# Pool files: *.pool first, then every other file.
complete -c tcpdist -s f -x -k -a '(__fish_complete_suffix .pool)' -d 'Pool file'
complete -c tcpdist -k -a '(__fish_complete_suffix .pool)'
