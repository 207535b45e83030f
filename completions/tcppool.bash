# bash completion for tcppool(1)                           -*- shell-script -*-
# Installed as share/bash-completion/completions/tcppool. Uses bash-completion's
# helpers when they are loaded and plain compgen otherwise.

# Pool files: *.pool (and directories) when the directory has any, else every file.
_tcppool_pool()
{
    local f
    COMPREPLY=()
    if declare -F _filedir >/dev/null; then
        _filedir pool
        for f in "${COMPREPLY[@]}"; do
            [[ -d ${f/#\~/$HOME} ]] || return 0
        done
        COMPREPLY=()
        _filedir
        return 0
    fi
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -X '!*.pool' -- "$cur"))
    if ((${#COMPREPLY[@]} == 0)); then
        COMPREPLY=($(compgen -f -- "$cur"))
    else
        COMPREPLY+=($(compgen -d -- "$cur"))
    fi
}

# Backend names of the pool file ($pool): the NAME of every [backend NAME]
# header (names are 1-63 of A-Z a-z 0-9 . _ -), and "pool" when $1 is given.
_tcppool_backends()
{
    local p=$pool names
    # Undo the simplest quoting and a leading ~; anything fancier is not a pool path.
    p=${p#[\"\']}
    p=${p%[\"\']}
    p=${p/#\~/$HOME}
    [[ -n $p && -f $p && -r $p ]] &&
        names=$(sed -n 's/^[[:blank:]]*\[[[:blank:]]*backend[[:blank:]][[:blank:]]*\([A-Za-z0-9._-][A-Za-z0-9._-]*\)[[:blank:]]*\].*$/\1/p' -- "$p" 2>/dev/null)
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$names${1:+$'\n'pool}" -- "$cur"))
}

# KEY= of a section ($1: pool or backend), or the values of KEY after "KEY=".
_tcppool_settings()
{
    local keys
    if [[ $cur == *=* ]]; then
        local key=${cur%%=*} values=
        case $key in
        balance) values='hash roundrobin leastconn random' ;;
        hash_key) values='ip ip_port' ;;
        state) values='up drain down' ;;
        proxy_protocol) values='off v1 v2' ;;
        check) values='connect send-expect http' ;;
        on_down) values='keep shutdown' ;;
        backup) values='yes no' ;;
        locality) values='off prefer strict' ;;
        esac
        COMPREPLY=($(compgen -P "$key=" -W "$values" -- "${cur#*=}"))
        return
    fi
    if [[ $1 == pool ]]; then
        keys='listen balance hash_key connect_timeout idle_timeout retries check_interval
            check_rise check_fall max_conns resolve_interval control instance hash_seed table_size
            zone_table_size
            proxy_protocol accept_proxy_from accept_proxy_timeout allow deny client_max_conns
            client_rate client_prefix6 locality locality_overprovision'
    else
        keys='address weight state max_conns backup proxy_protocol zone'
    fi
    # Health checks: in [pool], and in a backend to override the pool's.
    keys+=' check check_send check_expect check_http check_expect_status check_port
        check_timeout on_down slowstart'
    COMPREPLY=($(compgen -S = -W "$keys" -- "$cur"))
    compopt -o nospace 2>/dev/null
}

# bash replaces only the part of the word after its last '=' or ':' (they
# are in COMP_WORDBREAKS): drop what comes before from each answer.
_tcppool_trim()
{
    local prefix i
    [[ $cur == *[=:]* ]] || return 0
    prefix=${cur%"${cur##*[=:]}"}
    [[ $COMP_WORDBREAKS == *"${prefix: -1}"* ]] || return 0
    for i in "${!COMPREPLY[@]}"; do
        COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
    done
}

_tcppool()
{
    local cur prev words cword i cmd= ci=0 pool=$TCPDIST_POOL n=0 w
    # Words split at blanks only: KEY=VALUE and ADDRESS:PORT stay whole,
    # whatever COMP_WORDBREAKS says (see _tcppool_trim for the other half).
    local line=${COMP_LINE:0:COMP_POINT}
    read -ra words <<<"$line"
    [[ -z $line || $line == *[[:blank:]] ]] && words+=('')
    cword=$((${#words[@]} - 1))
    cur=${words[cword]}
    prev=${words[cword - 1]}
    COMPREPLY=()

    # The global options, then the command; -f may be anywhere before it.
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
        -f) ((i++)); ((i < cword)) && pool=${words[i]} ;;
        -f?*) pool=${w#-f} ;;
        -*) ;;
        *) cmd=$w ci=$i; break ;;
        esac
    done

    if [[ $prev == -f && -z $cmd ]]; then
        _tcppool_pool
        return
    fi
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '-f -h --help --version' -- "$cur"))
        else
            COMPREPLY=($(compgen -W 'init list show add rm set drain up down check' -- "$cur"))
        fi
        return
    fi

    # n: which operand of the command is being completed (from 1).
    for ((i = ci + 1; i < cword; i++)); do
        [[ ${words[i]} == -* && ${words[i]} != *=* ]] || n=$((n + 1))
    done
    n=$((n + 1))
    case $cmd in
    list | check | show)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--json' -- "$cur"))
        elif [[ $cmd == show ]] && ((n == 1)); then
            _tcppool_backends pool
        fi
        ;;
    drain)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--wait --wait=' -- "$cur"))
        else
            _tcppool_backends
        fi
        ;;
    rm | up | down)
        ((n == 1)) && _tcppool_backends
        ;;
    init)
        _tcppool_settings pool
        ;;
    add)
        # NAME and ADDRESS are new: nothing to offer.
        ((n >= 3)) && _tcppool_settings backend
        ;;
    set)
        if ((n == 1)); then
            _tcppool_backends pool
        else
            for ((i = ci + 1; i < cword; i++)); do
                [[ ${words[i]} == -* ]] || break
            done
            _tcppool_settings "$([[ ${words[i]} == pool ]] && echo pool || echo backend)"
        fi
        ;;
    esac
    _tcppool_trim
} &&
    complete -F _tcppool tcppool

# ex: filetype=sh
