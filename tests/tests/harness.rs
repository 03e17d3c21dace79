//! The harness itself: moto starts, answers DynamoDB through the real SDK, and stops.

use trailsight_integration::Moto;

#[tokio::test]
async fn moto_serves_dynamodb_through_the_sdk() {
    let moto = Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let tables = client.list_tables().send().await.expect("list tables");
    assert!(tables.table_names().is_empty());
    let port = moto.port;
    drop(moto);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto still listening after drop"
    );
}
