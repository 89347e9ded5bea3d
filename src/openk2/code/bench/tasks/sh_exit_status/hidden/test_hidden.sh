set -u
out=$(bash check.sh no-such-file); rc=$?
[ "$rc" = 1 ] && [ "$out" = missing ] || { echo "rc=$rc out=$out"; exit 1; }
touch here; bash check.sh here || exit 1
