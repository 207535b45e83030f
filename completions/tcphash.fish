# fish completion for tcphash(1). Installed as share/fish/vendor_completions.d/tcphash.fish.

# Backend names of the pool given by -f on the line, else $TCPDIST_POOL: the
# NAME of every [backend NAME] header (names are 1-63 of A-Z a-z 0-9 . _ -).
function __tcphash_backends
    set -l pool $TCPDIST_POOL
    set -l tokens (commandline -opc)
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case --
                break
            case -f
                set i (math $i + 1)
                test $i -le (count $tokens); and set pool $tokens[$i]
            case '-f?*'
                set pool (string sub -s 3 -- $tokens[$i])
        end
        set i (math $i + 1)
    end
    set pool (string replace -r -- '^~(?=/|$)' $HOME $pool)
    test -n "$pool" -a -f "$pool" -a -r "$pool"; or return
    string match -rg '^[ \t]*\[[ \t]*backend[ \t]+([A-Za-z0-9._-]+)[ \t]*\]' <$pool
end

complete -c tcphash -s h -l help -d 'Print usage and exit'
complete -c tcphash -l version -d 'Print version and exit'
complete -c tcphash -n 'not __fish_contains_opt diff' -s f -x -k -a '(__fish_complete_suffix .pool)' -d 'Pool file'
complete -c tcphash -n 'not __fish_contains_opt diff stats' -s n -x -k -a '(seq 1 32)' -d 'First K backends of each client preference order'
complete -c tcphash -n 'not __fish_contains_opt diff' -l down -x -a '(__tcphash_backends)' -d 'Answer as if backend NAME were down'
complete -c tcphash -n 'not __fish_contains_opt -s n -s f down stats diff' -l diff -d 'Share of clients that move from pool OLD to NEW'
complete -c tcphash -n '__fish_contains_opt diff' -l without -x -a '(__tcphash_backends)' -d 'With --diff POOL: compare with POOL without backend NAME'
complete -c tcphash -n '__fish_contains_opt diff' -l set -x -d 'With --diff POOL: compare with NAME.KEY=VALUE set in a copy'
complete -c tcphash -n 'not __fish_contains_opt -s n diff stats' -l stats -d 'Each backend share against its weight share'
complete -c tcphash -n 'not __fish_contains_opt diff stats' -l zone -x -d 'Answer as if every client were in zone NAME'
complete -c tcphash -l json -d 'Print JSON'
# Operands: OLD and NEW pool files after --diff, else client addresses (free text).
complete -c tcphash -f
complete -c tcphash -n '__fish_contains_opt diff' -k -a '(__fish_complete_suffix .pool)'
