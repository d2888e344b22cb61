//! The macro that makes a typed wrapper of the generic resource.

macro_rules! resource_wrapper {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $crate::Resource);

        impl $name {
            /// The generic resource.
            pub fn resource(&self) -> &$crate::Resource {
                &self.0
            }

            /// The generic resource, by value.
            pub fn into_resource(self) -> $crate::Resource {
                self.0
            }
        }

        impl From<$crate::Resource> for $name {
            fn from(resource: $crate::Resource) -> Self {
                Self(resource)
            }
        }
    };
}
