#!/usr/bin/env bash
# Fails when a file in src/X/ includes a header of a layer above X
# (order in docs/architecture.md): base < kernels, gguf < tok < model < engine
# < server < cli. Also rejects includes of another module's private *_int.h.
set -u
cd "$(dirname "$0")/.."
rank() {
  case "$1" in
    base) echo 0 ;; kernels|gguf) echo 1 ;; tok) echo 2 ;; model) echo 3 ;;
    engine) echo 4 ;; server) echo 5 ;; cli) echo 6 ;; *) echo -1 ;;
  esac
}
bad=0
while IFS= read -r line; do
  file=${line%%:*}
  inc=$(printf '%s' "$line" | sed -n 's/.*#include *"\([a-z_]*\)\/\([a-z0-9_]*\.h\)".*/\1 \2/p')
  [ -n "$inc" ] || continue
  mod=${inc%% *}; hdr=${inc#* }
  from=$(printf '%s' "$file" | sed -n 's#^src/\([a-z_]*\)/.*#\1#p')
  rf=$(rank "$from"); ri=$(rank "$mod")
  if [ "$rf" -ge 0 ] && [ "$ri" -ge 0 ] && [ "$ri" -gt "$rf" ]; then
    echo "layering: $file includes $mod/$hdr (a layer above $from/)"; bad=1
  fi
  if [ "$ri" -ge 0 ] && [ "$mod" != "$from" ] && [ "$rf" -ne "$ri" ] && [[ $hdr == *_int.h ]]; then
    echo "layering: $file includes $mod/$hdr, a private header of another module"; bad=1
  fi
  if [ "$mod" = kernels ] && [ "$from" = gguf ] || [ "$mod" = gguf ] && [ "$from" = kernels ]; then
    echo "layering: $file includes $mod/$hdr (kernels and gguf are siblings)"; bad=1
  fi
done < <(grep -rn '#include *"[a-z_]*/' src)
[ "$bad" -eq 0 ] && echo "layering: ok"
exit "$bad"
