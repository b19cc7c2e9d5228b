originData = {
fromNetworkmapd : [],
nmpClient : []
}
