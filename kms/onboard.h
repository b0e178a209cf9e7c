/*
 * onboard.h — the onboard page text (webpage.c).
 */
#ifndef DSTACK_KMS_ONBOARD_H
#define DSTACK_KMS_ONBOARD_H

extern const char kms_onboard_page[];
extern const unsigned long kms_onboard_page_len;

#endif
