# Every package of this tree: package/NAME/NAME.mk.
include $(sort $(wildcard $(BR2_EXTERNAL_POSTERN_PATH)/package/*/*.mk))
