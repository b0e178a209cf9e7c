/*
 * dashboard.h — the admin dashboard page (GET / on the admin listener).
 */
#ifndef DSTACK_GATEWAY_DASHBOARD_H
#define DSTACK_GATEWAY_DASHBOARD_H

extern const char gw_dashboard_html[];

#endif
