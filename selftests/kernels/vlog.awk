# Filter for the guest's test output (selftests/kernels/init): passes every
# line through, except that a verifier log libbpf prints between
# "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD LOG --" is cut to its first
# HEAD and last TAIL lines (the error is at the end), with a note of how many
# lines were left out. A log can run to thousands of lines per load, and the
# serial console of an emulated machine is slow.
BEGIN {
	if (HEAD == "") HEAD = 6
	if (TAIL == "") TAIL = 30
	inlog = 0
}
function flush_tail(   i, first) {
	first = n - TAIL + 1
	if (first <= HEAD) first = HEAD + 1
	if (first > HEAD + 1) print "  [... " (first - HEAD - 1) " verifier log lines left out ...]"
	for (i = first; i <= n; i++) print buf[i % (TAIL + 1)]
}
/-- BEGIN PROG LOAD LOG --/ {
	print; fflush(); inlog = 1; n = 0; next
}
inlog && /-- END PROG LOAD LOG --/ {
	flush_tail(); print; fflush(); inlog = 0; next
}
inlog {
	n++
	if (n <= HEAD) { print; fflush() }
	else buf[n % (TAIL + 1)] = $0
	next
}
{ print; fflush() }
END { if (inlog) flush_tail() }
