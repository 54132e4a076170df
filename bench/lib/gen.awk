# The benchmark's cluster state in every form the modes need: N Services x E
# endpoints laid out as kube-proxy's iptables and nftables proxiers lay them
# out (iptables-restore / nft -f input), as manifests for `kxp sync` and as a
# JSON array for the test API server. One generator, so every mode is given
# the same Services, endpoints and order.
#
# awk -f gen.awk -v fmt=FORMAT -v n=N -v e=E [-v measured=1 -v order=first|last]
#     [-v chg=I] [-v pod=IP] [-v cluster_cidr=CIDR] [-v node=NAME]
#
# FORMAT: ipt (full iptables-restore input, nat + filter, hooks included),
#   ipt_partial (the --noflush input of a one-endpoint change of service chg,
#   as kube-proxy's partial sync writes it), ipt_hooks (only the jumps from the
#   built-in chains), nft (the ip kube-proxy table, hooks included),
#   nft_partial (the transaction of a one-endpoint change), nft_hooks,
#   yaml (kxp sync manifests), json (objects for kxp-fake-apiserver --load);
#   kube-proxy's IPVS proxier: ipvs_dev (`ip -batch`: the kube-ipvs0 dummy
#   device and every ClusterIP on it), ipvs_sets (`ipset restore`), ipvs
#   (`ipvsadm -R`: a virtual server per ClusterIP and per NodePort on
#   node_ip, round robin, masquerading real servers), ipvs_np (the NodePort
#   virtual servers alone), ipvs_ipt (its iptables-restore input, hooks
#   included), ipvs_hooks.
# Services: with measured=1 four services backed by pod:7000 come first
# (ClusterIP 10.96.0.100, NodePort 30200 eTP=Cluster, NodePort 30201
# eTP=Local) and last (ClusterIP 10.96.0.200), around N-4 fillers; otherwise
# N fillers. Filler i: ClusterIP 10.97.0.1 + i (250 per /24), port 80/TCP, E
# endpoints 10.100.0.1 + serial, port 8080, on node2 (never reached).
# chg=I (0-based filler index): its first endpoint becomes 10.99.255.1.
# node_ip: the node address NodePort virtual servers listen on (ipvs,
# ipvs_np; default 198.51.100.1).

function svc_ip(i) { return sprintf("10.%d.%d.%d", 97 + int(i / 62500), int((i % 62500) / 250), i % 250 + 1) }
function ep_ip(j) { j++; return sprintf("10.%d.%d.%d", 100 + int(j / 65536), int(j / 256) % 256, j % 256) }
# Chain-name suffixes: 16 characters as kube-proxy's (base32 of a hash there).
function hx(kind, i) { return sprintf("%s%016X", kind, i) }
# An endpoint chain is named after its service and address (a new address is
# a new chain, as kube-proxy's hash of service + endpoint makes it).
function ip2int(a,    p) { split(a, p, "."); return ((p[1] * 256 + p[2]) * 256 + p[3]) * 256 + p[4] }
function epc(kind, s, addr) { return sprintf("%s%05X%011X", kind, s, ip2int(addr)) }

# add NAME IP PORT NODEPORT ETP TARGETPORT: one service; endpoints in EP[name, k]
function add(name, ip, port, np, etp, tport) {
	S++
	SN[S] = name; SIP[S] = ip; SPORT[S] = port; SNP[S] = np; SETP[S] = etp; STP[S] = tport
}
function add_ep(name, addr, nd) { NE[name]++; EA[name, NE[name]] = addr; EN[name, NE[name]] = nd }

function measured_first() {
	add("m-first", "10.96.0.100", 80, 0, "Cluster", 7000); add_ep("m-first", pod, node)
	add("m-np-cluster", "10.96.0.101", 80, 30200, "Cluster", 7000); add_ep("m-np-cluster", pod, node)
	add("m-np-local", "10.96.0.102", 80, 30201, "Local", 7000); add_ep("m-np-local", pod, node)
}

BEGIN {
	if (pod == "") pod = "10.244.1.11"
	if (node == "") node = "node1"
	if (cluster_cidr == "") cluster_cidr = "10.244.0.0/16"
	if (chg == "") chg = -1
	if (node_ip == "") node_ip = "198.51.100.1"
	nf = measured ? (n > 4 ? n - 4 : 0) : n
	if (measured && order != "last") measured_first()
	for (i = 0; i < nf; i++) {
		nm = "fill-" i
		add(nm, svc_ip(i), 80, 0, "Cluster", 8080)
		for (k = 0; k < e; k++)
			add_ep(nm, (i == chg && k == 0) ? "10.99.255.1" : ep_ip(i * e + k), "node2")
		if (i == chg) { CHG = nm; CHGS = S; OLDEP = ep_ip(i * e) }
	}
	if (measured && order == "last") measured_first()
	if (measured) { add("m-last", "10.96.0.200", 80, 0, "Cluster", 7000); add_ep("m-last", pod, node) }

	if (fmt == "ipt") ipt(0)
	else if (fmt == "ipt_partial") ipt(1)
	else if (fmt == "ipt_hooks") ipt_hooks()
	else if (fmt == "nft") nft()
	else if (fmt == "nft_partial") nft_partial()
	else if (fmt == "nft_hooks") nft_hooks()
	else if (fmt == "ipvs_dev") ipvs_dev()
	else if (fmt == "ipvs_sets") ipvs_sets()
	else if (fmt == "ipvs") ipvs(0)
	else if (fmt == "ipvs_np") ipvs(1)
	else if (fmt == "ipvs_ipt") ipvs_ipt(0)
	else if (fmt == "ipvs_hooks") ipvs_ipt(1)
	else if (fmt == "yaml") yaml()
	else if (fmt == "json") json()
	else { print "gen.awk: unknown fmt " fmt > "/dev/stderr"; exit 2 }
}

# ---- iptables (kube-proxy's iptables proxier) --------------------------------

function ipt_hooks() {
	print "*filter"
	print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
	print "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
	print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
	print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
	print "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
	print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
	print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
	print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
	print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
	print "COMMIT"
	print "*nat"
	print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
	print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
	print "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
	print "COMMIT"
}

function svcname(s) { return "bench/" SN[s] ":t" }

# ipt(partial): kube-proxy always rewrites the top-level chains in full; a
# partial sync (MinimizeIPTablesRestore) adds only the changed service's
# chains and deletes its stale endpoint chain, with --noflush.
function ipt(partial,    s, k, m, nm, sep, svc, ext, svl, nloc, cmt) {
	print "*filter"
	print ":KUBE-NODEPORTS - [0:0]"
	print ":KUBE-SERVICES - [0:0]"
	print ":KUBE-EXTERNAL-SERVICES - [0:0]"
	print ":KUBE-FORWARD - [0:0]"
	print ":KUBE-PROXY-FIREWALL - [0:0]"
	print "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
	print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"
	print "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
	if (!partial) {
		print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
		print "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"
		print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL"
		print "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
	}
	print "COMMIT"
	print "*nat"
	print ":KUBE-SERVICES - [0:0]"
	print ":KUBE-NODEPORTS - [0:0]"
	print ":KUBE-POSTROUTING - [0:0]"
	print ":KUBE-MARK-MASQ - [0:0]"
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		if (partial && nm != CHG) continue
		print ":" hx("KUBE-SVC-", s) " - [0:0]"
		if (SNP[s]) print ":" hx("KUBE-EXT-", s) " - [0:0]"
		if (SETP[s] == "Local") print ":" hx("KUBE-SVL-", s) " - [0:0]"
		for (k = 1; k <= NE[nm]; k++) print ":" epc("KUBE-SEP-", s, EA[nm, k]) " - [0:0]"
		if (partial) print ":" epc("KUBE-SEP-", s, OLDEP) " - [0:0]"
	}
	print "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
	print "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000"
	print "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
	print "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"
	# top-level chains, always in full
	for (s = 1; s <= S; s++) {
		cmt = svcname(s)
		printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport %d -j %s\n", SIP[s], cmt, SPORT[s], hx("KUBE-SVC-", s)
	}
	for (s = 1; s <= S; s++)
		if (SNP[s])
			printf "-A KUBE-NODEPORTS -p tcp -m comment --comment \"%s\" -m tcp --dport %d -j %s\n", svcname(s), SNP[s], hx("KUBE-EXT-", s)
	print "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		if (partial && nm != CHG) continue
		cmt = svcname(s); svc = hx("KUBE-SVC-", s)
		printf "-A %s ! -s %s -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport %d -j KUBE-MARK-MASQ\n", svc, cluster_cidr, SIP[s], cmt, SPORT[s]
		S_CUR = s
		ipt_lb(svc, nm, cmt, 0)
		if (SNP[s]) {
			ext = hx("KUBE-EXT-", s)
			if (SETP[s] == "Local") {
				svl = hx("KUBE-SVL-", s)
				# eTP=Local: pods masqueraded to the cluster chain, the rest to local endpoints only
				printf "-A %s -s %s -m comment --comment \"pod traffic for %s external destinations\" -j %s\n", ext, cluster_cidr, cmt, svc
				printf "-A %s -m comment --comment \"masquerade LOCAL traffic for %s external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n", ext, cmt
				printf "-A %s -m comment --comment \"route LOCAL traffic for %s external destinations\" -m addrtype --src-type LOCAL -j %s\n", ext, cmt, svc
				printf "-A %s -j %s\n", ext, svl
				ipt_lb(svl, nm, cmt, 1)
			} else {
				printf "-A %s -m comment --comment \"masquerade traffic for %s external destinations\" -j KUBE-MARK-MASQ\n", ext, cmt
				printf "-A %s -j %s\n", ext, svc
			}
		}
		for (k = 1; k <= NE[nm]; k++) {
			sep = epc("KUBE-SEP-", s, EA[nm, k])
			printf "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", sep, EA[nm, k], cmt
			printf "-A %s -p tcp -m comment --comment \"%s\" -m tcp -j DNAT --to-destination %s:%d\n", sep, cmt, EA[nm, k], STP[s]
		}
		if (partial) print "-X " epc("KUBE-SEP-", s, OLDEP)
	}
	if (!partial) {
		print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
	}
	print "COMMIT"
}

# statistic random: rule k of n matches with probability 1/(n-k+1), the last always
function ipt_lb(chain, nm, cmt, local_only,    k, cnt, idx, m) {
	cnt = 0
	for (k = 1; k <= NE[nm]; k++)
		if (!local_only || EN[nm, k] == node) idx[++cnt] = k
	for (m = 1; m <= cnt; m++) {
		k = idx[m]
		if (m < cnt)
			printf "-A %s -m comment --comment \"%s -> %s:%d\" -m statistic --mode random --probability %.11f -j %s\n", chain, cmt, EA[nm, k], 8080, 1 / (cnt - m + 1), epc("KUBE-SEP-", S_CUR, EA[nm, k])
		else
			printf "-A %s -m comment --comment \"%s -> %s:%d\" -j %s\n", chain, cmt, EA[nm, k], 8080, epc("KUBE-SEP-", S_CUR, EA[nm, k])
	}
}

# ---- nftables (kube-proxy's nftables proxier, table ip kube-proxy) ------------

function T() { return "ip kube-proxy" }
function nft_hooks() {
	printf "add rule %s nat-prerouting jump services\n", T()
	printf "add rule %s nat-output jump services\n", T()
	printf "add rule %s nat-postrouting jump masquerading\n", T()
	printf "add rule %s filter-forward ct state invalid drop\n", T()
	printf "add rule %s filter-forward meta mark & 0x4000 == 0x4000 accept\n", T()
}

function nft_svc_chain(s,    nm, k, sep, vm) {
	nm = SN[s]
	printf "add rule %s %s ip daddr %s tcp dport %d ip saddr != %s jump mark-for-masquerade\n", T(), hx("service-", s), SIP[s], SPORT[s], cluster_cidr
	vm = ""
	for (k = 1; k <= NE[nm]; k++)
		vm = vm (k > 1 ? ", " : "") (k - 1) " : goto " epc("endpoint-", s, EA[nm, k])
	printf "add rule %s %s numgen random mod %d vmap { %s }\n", T(), hx("service-", s), NE[nm], vm
}

function nft_ep_chain(s, k,    nm, c) {
	nm = SN[s]; c = epc("endpoint-", s, EA[nm, k])
	printf "add chain %s %s\n", T(), c
	printf "add rule %s %s ip saddr %s jump mark-for-masquerade\n", T(), c, EA[nm, k]
	printf "add rule %s %s meta l4proto tcp dnat to %s:%d\n", T(), c, EA[nm, k], STP[s]
}

function nft(    s, k, nm, vm, cnt) {
	printf "add table %s { comment \"rules for kube-proxy\" ; }\n", T()
	printf "add chain %s nat-prerouting { type nat hook prerouting priority -100 ; policy accept ; }\n", T()
	printf "add chain %s nat-output { type nat hook output priority -100 ; policy accept ; }\n", T()
	printf "add chain %s nat-postrouting { type nat hook postrouting priority 100 ; policy accept ; }\n", T()
	printf "add chain %s filter-forward { type filter hook forward priority -110 ; policy accept ; }\n", T()
	printf "add chain %s services\n", T()
	printf "add chain %s mark-for-masquerade\n", T()
	printf "add chain %s masquerading\n", T()
	printf "add rule %s mark-for-masquerade mark set mark or 0x4000\n", T()
	printf "add rule %s masquerading mark and 0x4000 == 0 return\n", T()
	printf "add rule %s masquerading mark set mark xor 0x4000\n", T()
	printf "add rule %s masquerading masquerade fully-random\n", T()
	printf "add set %s nodeport-ips { type ipv4_addr ; }\n", T()
	printf "add map %s service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }\n", T()
	printf "add map %s service-nodeports { type inet_proto . inet_service : verdict ; }\n", T()
	printf "add rule %s services ip daddr . meta l4proto . th dport vmap @service-ips\n", T()
	printf "add rule %s services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n", T()
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		printf "add chain %s %s\n", T(), hx("service-", s)
		for (k = 1; k <= NE[nm]; k++) nft_ep_chain(s, k)
		nft_svc_chain(s)
		printf "add element %s service-ips { %s . tcp . %d : goto %s }\n", T(), SIP[s], SPORT[s], hx("service-", s)
		if (SNP[s]) {
			printf "add chain %s %s\n", T(), hx("external-", s)
			if (SETP[s] == "Local") {
				# eTP=Local: pods to the cluster chain, external clients to local endpoints only
				printf "add chain %s %s\n", T(), hx("local-", s)
				printf "add rule %s %s ip saddr %s goto %s\n", T(), hx("external-", s), cluster_cidr, hx("service-", s)
				printf "add rule %s %s fib saddr type local jump mark-for-masquerade\n", T(), hx("external-", s)
				printf "add rule %s %s fib saddr type local goto %s\n", T(), hx("external-", s), hx("service-", s)
				printf "add rule %s %s goto %s\n", T(), hx("external-", s), hx("local-", s)
				vm = ""; cnt = 0
				for (k = 1; k <= NE[nm]; k++)
					if (EN[nm, k] == node) {
						vm = vm (cnt ? ", " : "") cnt " : goto " epc("endpoint-", s, EA[nm, k])
						cnt++
					}
				printf "add rule %s %s numgen random mod %d vmap { %s }\n", T(), hx("local-", s), cnt, vm
			} else {
				printf "add rule %s %s jump mark-for-masquerade\n", T(), hx("external-", s)
				printf "add rule %s %s goto %s\n", T(), hx("external-", s), hx("service-", s)
			}
			printf "add element %s service-nodeports { tcp . %d : goto %s }\n", T(), SNP[s], hx("external-", s)
		}
	}
	nft_hooks()
}

# one endpoint replaced: the new endpoint chain, the service chain rewritten,
# the stale endpoint chain flushed and deleted, in one transaction
function nft_partial(    s, k) {
	for (s = 1; s <= S; s++) {
		if (SN[s] != CHG) continue
		nft_ep_chain(s, 1)
		printf "flush chain %s %s\n", T(), hx("service-", s)
		nft_svc_chain(s)
		printf "flush chain %s %s\n", T(), epc("endpoint-", s, OLDEP)
		printf "delete chain %s %s\n", T(), epc("endpoint-", s, OLDEP)
	}
}

# ---- IPVS (kube-proxy's IPVS proxier) ----------------------------------------
# Laid out as kube-proxy's ipvs mode does: every ClusterIP bound to the dummy
# device kube-ipvs0 (so it is local and IPVS sees it at LOCAL_IN), a virtual
# server per ClusterIP:port and per node address:NodePort with the
# service's endpoints as masquerading ("-m") real servers (eTP=Local: the
# node's own endpoints only), and a fixed set of iptables rules matching
# ipsets for masquerade marks, hairpin and the access filter. Its chains are
# those of kube-proxy with KUBE-IPVS- in front (KUBE-SERVICES ->
# KUBE-IPVS-SERVICES, ...): the bench loads it beside the iptables mode's
# tables, whose chains have the plain names. The scheduler is rr, kube-proxy's
# default.

function ipvs_dev(    s) {
	print "link add kube-ipvs0 type dummy"
	for (s = 1; s <= S; s++) printf "address add %s/32 dev kube-ipvs0\n", SIP[s]
}

function ipvs_sets(    s, k, nm) {
	print "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 1048576"
	print "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 1048576"
	print "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535"
	print "create KUBE-NODE-PORT-LOCAL-TCP bitmap:port range 0-65535"
	print "create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535"
	print "create KUBE-LOAD-BALANCER hash:ip,port family inet hashsize 1024 maxelem 65536"
	print "create KUBE-EXTERNAL-IP hash:ip,port family inet hashsize 1024 maxelem 65536"
	print "create KUBE-EXTERNAL-IP-LOCAL hash:ip,port family inet hashsize 1024 maxelem 65536"
	print "create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 1048576"
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		printf "add KUBE-CLUSTER-IP %s,tcp:%d\n", SIP[s], SPORT[s]
		printf "add KUBE-IPVS-IPS %s\n", SIP[s]
		if (SNP[s]) printf "add %s %d\n", SETP[s] == "Local" ? "KUBE-NODE-PORT-LOCAL-TCP" : "KUBE-NODE-PORT-TCP", SNP[s]
		# hairpin: an endpoint on this node reaching its own service
		for (k = 1; k <= NE[nm]; k++)
			if (EN[nm, k] == node && !LB[EA[nm, k], STP[s]]++) printf "add KUBE-LOOP-BACK %s,tcp:%d,%s\n", EA[nm, k], STP[s], EA[nm, k]
	}
}

# ipvs(np_only): the virtual servers and their real servers
function ipvs(np_only,    s, k, nm, vs) {
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		if (!np_only) {
			vs = SIP[s] ":" SPORT[s]
			printf "-A -t %s -s rr\n", vs
			for (k = 1; k <= NE[nm]; k++) printf "-a -t %s -r %s:%d -m -w 1\n", vs, EA[nm, k], STP[s]
		}
		if (SNP[s]) {
			vs = node_ip ":" SNP[s]
			printf "-A -t %s -s rr\n", vs
			for (k = 1; k <= NE[nm]; k++)
				if (SETP[s] != "Local" || EN[nm, k] == node) printf "-a -t %s -r %s:%d -m -w 1\n", vs, EA[nm, k], STP[s]
		}
	}
}

function ipvs_hook_rules() {
	print "*filter"
	print "-A INPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-FILTER"
	print "-A INPUT -m comment --comment \"kube-proxy firewall rules\" -j KUBE-IPVS-PROXY-FIREWALL"
	print "-A INPUT -m comment --comment \"kubernetes health check rules\" -j KUBE-IPVS-NODE-PORT"
	print "-A FORWARD -m comment --comment \"kube-proxy firewall rules\" -j KUBE-IPVS-PROXY-FIREWALL"
	print "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-IPVS-FORWARD"
	print "-A OUTPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-OUT-FILTER"
	print "COMMIT"
	print "*nat"
	print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-IPVS-SERVICES"
	print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-IPVS-SERVICES"
	print "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-IPVS-POSTROUTING"
	print "COMMIT"
}

# ipvs_ipt(hooks_only): the rules do not grow with N (the ipsets do)
function ipvs_ipt(hooks_only,    c) {
	if (hooks_only) { ipvs_hook_rules(); return }
	print "*filter"
	print ":KUBE-IPVS-FORWARD - [0:0]"
	print ":KUBE-IPVS-NODE-PORT - [0:0]"
	print ":KUBE-IPVS-PROXY-FIREWALL - [0:0]"
	print ":KUBE-IPVS-FILTER - [0:0]"
	print ":KUBE-IPVS-OUT-FILTER - [0:0]"
	print "-A KUBE-IPVS-FORWARD -m conntrack --ctstate INVALID -j DROP"
	print "-A KUBE-IPVS-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"
	print "-A KUBE-IPVS-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
	print "-A KUBE-IPVS-NODE-PORT -m comment --comment \"Kubernetes health check node port\" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT"
	c = "-A KUBE-IPVS-FILTER -m set --match-set "
	print c "KUBE-LOAD-BALANCER dst,dst -j RETURN"
	print c "KUBE-CLUSTER-IP dst,dst -j RETURN"
	print c "KUBE-EXTERNAL-IP dst,dst -j RETURN"
	print c "KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN"
	print c "KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN"
	print "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable"
	print "-A KUBE-IPVS-OUT-FILTER -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-FILTER"
	print "COMMIT"
	print "*nat"
	print ":KUBE-IPVS-SERVICES - [0:0]"
	print ":KUBE-IPVS-POSTROUTING - [0:0]"
	print ":KUBE-IPVS-NODE-PORT - [0:0]"
	print ":KUBE-IPVS-LOAD-BALANCER - [0:0]"
	print ":KUBE-IPVS-MARK-MASQ - [0:0]"
	print "-A KUBE-IPVS-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"
	print "-A KUBE-IPVS-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
	print "-A KUBE-IPVS-POSTROUTING -j MARK --xor-mark 0x4000"
	print "-A KUBE-IPVS-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
	print "-A KUBE-IPVS-MARK-MASQ -j MARK --or-mark 0x4000"
	print "-A KUBE-IPVS-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port with externalTrafficPolicy=local\" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN"
	print "-A KUBE-IPVS-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-IPVS-MARK-MASQ"
	printf "-A KUBE-IPVS-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s %s -j KUBE-IPVS-MARK-MASQ\n", cluster_cidr
	print "-A KUBE-IPVS-SERVICES -m addrtype --dst-type LOCAL -j KUBE-IPVS-NODE-PORT"
	print "-A KUBE-IPVS-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT"
	print "COMMIT"
	ipvs_hook_rules()
}

# ---- Kubernetes objects ------------------------------------------------------

function yaml(    s, k, nm) {
	for (s = 1; s <= S; s++) {
		nm = SN[s]
		printf "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: bench}\n", nm
		printf "spec:\n  type: %s\n  clusterIP: %s\n  clusterIPs: [%s]\n", SNP[s] ? "NodePort" : "ClusterIP", SIP[s], SIP[s]
		if (SNP[s]) printf "  externalTrafficPolicy: %s\n", SETP[s]
		printf "  ports: [{name: t, protocol: TCP, port: %d, targetPort: %d%s}]\n", SPORT[s], STP[s], SNP[s] ? ", nodePort: " SNP[s] : ""
		printf "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		printf "metadata: {name: %s-1, namespace: bench, labels: {kubernetes.io/service-name: %s}}\n", nm, nm
		printf "addressType: IPv4\nendpoints:\n"
		for (k = 1; k <= NE[nm]; k++)
			printf "  - {addresses: [%s], conditions: {ready: true, serving: true, terminating: false}, nodeName: %s}\n", EA[nm, k], EN[nm, k]
		printf "ports: [{name: t, protocol: TCP, port: %d}]\n", STP[s]
	}
}

function json_svc(s,    nm) {
	nm = SN[s]
	printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"bench\"},", nm
	printf "\"spec\":{\"type\":\"%s\",\"clusterIP\":\"%s\",\"clusterIPs\":[\"%s\"],", SNP[s] ? "NodePort" : "ClusterIP", SIP[s], SIP[s]
	if (SNP[s]) printf "\"externalTrafficPolicy\":\"%s\",", SETP[s]
	printf "\"ports\":[{\"name\":\"t\",\"protocol\":\"TCP\",\"port\":%d,\"targetPort\":%d%s}]}}", SPORT[s], STP[s], SNP[s] ? ",\"nodePort\":" SNP[s] : ""
}

function json_slice(s,    nm, k) {
	nm = SN[s]
	printf "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"%s-1\",\"namespace\":\"bench\",\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\",\"endpoints\":[", nm, nm
	for (k = 1; k <= NE[nm]; k++)
		printf "%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},\"nodeName\":\"%s\"}", (k > 1 ? "," : ""), EA[nm, k], EN[nm, k]
	printf "],\"ports\":[{\"name\":\"t\",\"protocol\":\"TCP\",\"port\":%d}]}", STP[s]
}

# json: every object; with chg set and fmt=json, slice_only=NAME prints that one slice
function json(    s) {
	if (slice_only != "") {
		for (s = 1; s <= S; s++) if (SN[s] == slice_only) json_slice(s)
		print ""
		return
	}
	print "["
	for (s = 1; s <= S; s++) {
		json_svc(s); print ","
		json_slice(s); printf "%s\n", (s < S ? "," : "")
	}
	print "]"
}
