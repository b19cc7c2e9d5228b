originDataTmp = originData;
originData = {
fromNetworkmapd : [{ "AA:BB:CC:00:00:01": { "mac": "AA:BB:CC:00:00:01", "name": "phone", "ip": "192.168.50.20", "isWL": "1", "isOnline": "1", "rssi": "-60" }, "maclist": ["AA:BB:CC:00:00:01"] }],
nmpClient : [{}]
}
networkmap_fullscan = '0';
