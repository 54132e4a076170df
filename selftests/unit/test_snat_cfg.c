/* The masquerade settings (--snat-addr, --snat-port-range) reach kxp_config
 * through the model, with the documented defaults. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "model/model.h"
#include "../lib/testlib.h"

static int build(struct kxp_node_cfg *cfg, struct kxp_desired *d)
{
	struct kxp_objects objs = {};
	struct kxp_diags diags = {};
	int err = kxp_model_build(&objs, cfg, d, &diags);

	kxp_diags_free(&diags);
	return err;
}

KXP_TEST(snat_config_defaults_and_flags)
{
	struct kxp_node_cfg cfg = { .node_name = "n", .nodeport_primary = true, .n_node_ips = 2 };
	struct kxp_desired d = {};

	cfg.node_ips[0] = inet_addr("198.51.100.1");
	cfg.node_ips[1] = inet_addr("10.0.0.1");
	if (!ASSERT_OK(build(&cfg, &d), "build defaults"))
		return;
	ASSERT_EQ(d.cfg.snat_addr, inet_addr("198.51.100.1"), "default SNAT address is the primary node IP");
	ASSERT_EQ(d.cfg.snat_port_min, KXP_SNAT_PORT_MIN_DEF, "default port min");
	ASSERT_EQ(d.cfg.snat_port_max, KXP_SNAT_PORT_MAX_DEF, "default port max");
	kxp_desired_free(&d);

	cfg.snat_addr = inet_addr("10.0.0.1");
	cfg.snat_port_min = 40000;
	cfg.snat_port_max = 40100;
	if (!ASSERT_OK(build(&cfg, &d), "build with flags"))
		return;
	ASSERT_EQ(d.cfg.snat_addr, inet_addr("10.0.0.1"), "--snat-addr");
	ASSERT_EQ(d.cfg.snat_port_min, 40000, "--snat-port-range min");
	ASSERT_EQ(d.cfg.snat_port_max, 40100, "--snat-port-range max");
	kxp_desired_free(&d);
}
