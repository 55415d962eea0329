//! Print the sizes of the core's types (a development aid for the checker's memory budget).
fn main() {
    use imps_model::*;
    println!("Envelope {}", std::mem::size_of::<msg::Envelope>());
    println!("Primitive {}", std::mem::size_of::<msg::Primitive>());
    println!("LoginRequest {}", std::mem::size_of::<msg::LoginRequest>());
    println!(
        "LoginResponse {}",
        std::mem::size_of::<msg::LoginResponse>()
    );
    println!("Client {}", std::mem::size_of::<client::Client>());
    println!("Phase {}", std::mem::size_of::<client::Phase>());
    println!("Device {}", std::mem::size_of::<world::Device>());
    println!("InFlight {}", std::mem::size_of::<world::InFlight>());
    println!("Session {}", std::mem::size_of::<server::Session>());
    println!("UserServer {}", std::mem::size_of::<server::UserServer>());
}
