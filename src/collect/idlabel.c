#include "collect/idlabel.h"

#include <string.h>

/* The names of the labels, by enum idlabel. */
#define I(name)                                                                                    \
	{                                                                                          \
		name, sizeof(name) - 1                                                             \
	}
static const struct {
	const char *name;
	size_t len;
} ident_label[ID_N] = {
    [ID_UUID] = I("UUID"),
    [ID_GPU_UUID] = I("gpu_uuid"),
    [ID_MIG_ID] = I("GPU_I_ID"),
    [ID_MIG_PROFILE] = I("GPU_I_PROFILE"),
    [ID_INDEX] = I("gpu"),
    [ID_MODEL] = I("modelName"),
    [ID_MODEL2] = I("model_name"),
    [ID_PCI] = I("pci_bus_id"),
    [ID_DEVICE] = I("device"),
    [ID_HOST] = I("hostname"),
    [ID_HOST_OLD] = I("Hostname"),
    [ID_DRIVER] = I("DCGM_FI_DRIVER_VERSION"),
    [ID_POD] = I("pod"),
    [ID_NAMESPACE] = I("namespace"),
    [ID_CONTAINER] = I("container"),
};

/* Which identity label a label name is (enum idlabel), or -1: one comparison per label, picked
 * by length and first letter (this runs for every label of every sample). */
int idlabel_of(const char *name, size_t len)
{
	int k = -1;
	switch (len) {
	case 3: k = name[0] == 'p' ? ID_POD : ID_INDEX; break;
	case 4: k = ID_UUID; break;
	case 6: k = ID_DEVICE; break;
	case 8:
		k = name[0] == 'g'   ? ID_GPU_UUID
		    : name[0] == 'G' ? ID_MIG_ID
		    : name[0] == 'h' ? ID_HOST
		                     : ID_HOST_OLD;
		break;
	case 9: k = name[0] == 'm' ? ID_MODEL : name[0] == 'n' ? ID_NAMESPACE : ID_CONTAINER; break;
	case 10: k = name[0] == 'm' ? ID_MODEL2 : ID_PCI; break;
	case 13: k = ID_MIG_PROFILE; break;
	case 22: k = ID_DRIVER; break;
	default: return -1;
	}
	return ident_label[k].len == len && memcmp(name, ident_label[k].name, len) == 0 ? k : -1;
}
