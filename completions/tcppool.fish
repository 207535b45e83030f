# fish completion for tcppool(1). Installed as share/fish/vendor_completions.d/tcppool.fish.

set -l __tcppool_commands init list show add rm set drain up down check

# The pool given by -f on the line, else $TCPDIST_POOL.
function __tcppool_pool
    set -l pool $TCPDIST_POOL
    set -l tokens (commandline -opc)
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case -f
                set i (math $i + 1)
                test $i -le (count $tokens); and set pool $tokens[$i]
            case '-f?*'
                set pool (string sub -s 3 -- $tokens[$i])
            case '-*'
            case '*'
                break
        end
        set i (math $i + 1)
    end
    string replace -r -- '^~(?=/|$)' $HOME $pool
end

# Backend names of the pool: the NAME of every [backend NAME] header (names
# are 1-63 of A-Z a-z 0-9 . _ -).
function __tcppool_backends
    set -l pool (__tcppool_pool)
    test -n "$pool" -a -f "$pool" -a -r "$pool"; or return
    string match -rg '^[ \t]*\[[ \t]*backend[ \t]+([A-Za-z0-9._-]+)[ \t]*\]' <$pool
end

# The command and its operands so far: the words after the global options.
function __tcppool_args
    set -l tokens (commandline -opc)
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case -f
                set i (math $i + 1)
            case '-*'
            case '*'
                printf '%s\n' $tokens[$i..-1] | string match -v -- '--json'
                return
        end
        set i (math $i + 1)
    end
end

# True when the command is one of the arguments and N operands precede the
# cursor (N may be "+K": at least K).
function __tcppool_at
    set -l args (__tcppool_args)
    test (count $args) -ge 1; or return 1
    contains -- $args[1] $argv[2..-1]; or return 1
    set -l n (math (count $args) - 1)
    switch $argv[1]
        case '+*'
            test $n -ge (string sub -s 2 -- $argv[1])
        case '*'
            test $n -eq $argv[1]
    end
end

# KEY= of a section ($argv[1]: pool or backend), and the values of KEY=.
function __tcppool_settings
    set -l token (commandline -ct)
    if string match -q -- '*=*' $token
        set -l key (string split -m1 = -- $token)[1]
        switch $key
            case balance
                printf "$key=%s\n" hash roundrobin leastconn random
            case hash_key
                printf "$key=%s\n" ip ip_port
            case state
                printf "$key=%s\n" up drain down
            case proxy_protocol
                printf "$key=%s\n" off v1 v2
            case check
                printf "$key=%s\n" connect send-expect http
            case on_down
                printf "$key=%s\n" keep shutdown
            case backup
                printf "$key=%s\n" yes no
            case locality
                printf "$key=%s\n" off prefer strict
        end
        return
    end
    if test "$argv[1]" = pool
        printf '%s=\n' listen balance hash_key connect_timeout idle_timeout retries \
            check_interval check_rise check_fall max_conns resolve_interval control instance hash_seed table_size \
            zone_table_size \
            proxy_protocol accept_proxy_from accept_proxy_timeout allow deny client_max_conns \
            client_rate client_prefix6 locality locality_overprovision
    else
        printf '%s=\n' address weight state max_conns backup proxy_protocol zone
    end
    printf '%s=\n' check check_send check_expect check_http check_expect_status check_port \
        check_timeout on_down slowstart
end

function __tcppool_set_section
    set -l args (__tcppool_args)
    test "$args[2]" = pool; and echo pool; or echo backend
end

complete -c tcppool -f
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -s h -l help -d 'Print usage and exit'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -l version -d 'Print version and exit'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -s f -r -F -d 'Pool file'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a init -d 'Create the pool file'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a list -d 'List the backends'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a show -d 'Settings of a backend or of pool'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a add -d 'Add a backend'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a rm -d 'Remove a backend'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a set -d 'Change settings of a backend or of pool'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a drain -d 'Drain a backend'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a up -d 'Bring a backend up'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a down -d 'Take a backend down'
complete -c tcppool -n "not __fish_seen_subcommand_from $__tcppool_commands" -a check -d 'List every problem of the pool file'
complete -c tcppool -n '__fish_seen_subcommand_from list check show' -l json -d 'Print JSON'
complete -c tcppool -n '__fish_seen_subcommand_from drain' -l wait -d 'Then wait until tcpdist has no connection to it (=TIMEOUT)'
complete -c tcppool -n '__tcppool_at 0 show set' -a pool -d 'The [pool] section'
complete -c tcppool -n '__tcppool_at 0 show set rm drain up down' -a '(__tcppool_backends)' -d Backend
complete -c tcppool -n '__tcppool_at +0 init' -a '(__tcppool_settings pool)'
complete -c tcppool -n '__tcppool_at +2 add' -a '(__tcppool_settings backend)'
complete -c tcppool -n '__tcppool_at +1 set' -a '(__tcppool_settings (__tcppool_set_section))'
