async def test_private_redis_server_answers(redis_client):
    assert await redis_client.ping() is True
    info = await redis_client.info("server")
    assert info["tcp_port"] != 6379  # never the machine's shared server
