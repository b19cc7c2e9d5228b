get_cfg_clientlist = [[{"alias":"Upstairs","model_name":"RT-TEST","ip":"192.168.50.2","mac":"AA:BB:CC:00:01:00","online":"1","fwver":"3.0.0.4.388"},{"mac":"","alias":"x"}]];
get_onboardinglist = {};
