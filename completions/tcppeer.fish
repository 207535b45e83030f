# fish completion for tcppeer(1). Installed as share/fish/vendor_completions.d/tcppeer.fish.

function __tcppeer_members
    contains -- members (commandline -opc)
end

complete -c tcppeer -f
complete -c tcppeer -n 'not __tcppeer_members; and __fish_is_first_arg' -a members -d 'List the members of a running node'
complete -c tcppeer -n __tcppeer_members -l control -r -F -d 'Control socket'
complete -c tcppeer -n __tcppeer_members -l json -d 'Print JSON'

complete -c tcppeer -n 'not __tcppeer_members' -s h -l help -d 'Print usage and exit'
complete -c tcppeer -n 'not __tcppeer_members' -l version -d 'Print version and exit'
complete -c tcppeer -n 'not __tcppeer_members' -s n -x -d 'This node name'
complete -c tcppeer -n 'not __tcppeer_members' -s b -x -d 'Bind address ADDR:PORT'
complete -c tcppeer -n 'not __tcppeer_members' -s a -x -d 'Advertised address ADDR:PORT'
complete -c tcppeer -n 'not __tcppeer_members' -s j -x -d 'Seed ADDR:PORT to join through'
complete -c tcppeer -n 'not __tcppeer_members' -s t -x -d 'Tag KEY=VALUE'
complete -c tcppeer -n 'not __tcppeer_members' -s v -d 'Log debug messages'
complete -c tcppeer -n 'not __tcppeer_members' -l pool -r -k -a '(__fish_complete_suffix .pool)' -d 'Pool file to keep in step'
complete -c tcppeer -n 'not __tcppeer_members' -l service-tag -x -d 'Tag whose HOST:PORT makes a backend'
complete -c tcppeer -n 'not __tcppeer_members' -l control -r -F -d 'Control socket'
for o in probe-interval probe-timeout gossip-interval pushpull-interval gossip-to-dead tcp-timeout leave-timeout pool-delay
    complete -c tcppeer -n 'not __tcppeer_members' -l $o -x -d Duration
end
for o in gossip-nodes indirect-checks retransmit-mult suspicion-mult suspicion-max-mult
    complete -c tcppeer -n 'not __tcppeer_members' -l $o -x -d Count
end
