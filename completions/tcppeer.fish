# fish completion for tcppeer(1). Installed as share/fish/vendor_completions.d/tcppeer.fish.

function __tcppeer_members
    contains -- members (commandline -opc)
end

function __tcppeer_event
    contains -- event (commandline -opc); or contains -- force-leave (commandline -opc); or contains -- rtt (commandline -opc)
end

complete -c tcppeer -f
complete -c tcppeer -n 'not __tcppeer_members; and __fish_is_first_arg' -a members -d 'List the members of a running node'
complete -c tcppeer -n 'not __tcppeer_members; and __fish_is_first_arg' -a event -d 'Send a user event to the cluster'
complete -c tcppeer -n 'not __tcppeer_members; and __fish_is_first_arg' -a force-leave -d 'Mark a failed member left everywhere'
complete -c tcppeer -n 'not __tcppeer_members; and __fish_is_first_arg' -a rtt -d 'Estimated round trip between members'
complete -c tcppeer -n __tcppeer_event -l control -r -F -d 'Control socket'
complete -c tcppeer -n __tcppeer_members -l control -r -F -d 'Control socket'
complete -c tcppeer -n __tcppeer_members -l json -d 'Print JSON'

complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s h -l help -d 'Print usage and exit'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l version -d 'Print version and exit'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s n -x -d 'This node name'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s b -x -d 'Bind address ADDR:PORT'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s a -x -d 'Advertised address ADDR:PORT'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s j -x -d 'Seed ADDR:PORT to join through'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s t -x -d 'Tag KEY=VALUE'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -s v -d 'Log debug messages'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l pool -r -k -a '(__fish_complete_suffix .pool)' -d 'Pool file to keep in step'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l service-tag -x -d 'Tag whose HOST:PORT makes a backend'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l zone-tag -x -d 'Tag whose value is the backend zone'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l control -r -F -d 'Control socket'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l keyring -r -F -d 'Keyring file (base64 keys)'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l allow -x -d 'Accept only this network CIDR'
complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l snapshot -r -F -d 'Keep members and clocks in this file'
for o in probe-interval probe-timeout gossip-interval pushpull-interval gossip-to-dead tcp-timeout leave-timeout pool-delay reconnect-interval reconnect-timeout tombstone-timeout
    complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l $o -x -d Duration
end
for o in gossip-nodes indirect-checks retransmit-mult suspicion-mult suspicion-max-mult
    complete -c tcppeer -n 'not __tcppeer_members; and not __tcppeer_event' -l $o -x -d Count
end
